"""Whose data a caller may see: the one place partner scoping is decided.

An API key bound to a partner sees only that partner's tracking links, their clicks,
those clicks' conversions and their status history, the offers its links promote,
the partner itself, its postback rules and their deliveries, and the rejected fires on
its clicks.
Every read of the store goes through `TableReads` (models/store/reads.py), which
takes an `Access` on every method and adds `Access.conditions` to its query, so a
row outside the partner's data is simply not found: a null, a shorter page, a
`ClickNotFound`, never a refusal that would tell a caller the id exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from piccolo.table import Table

from models.store.tables import (
    Click,
    Conversion,
    ConversionStatusChange,
    FireRejection,
    Offer,
    Partner,
    PostbackDelivery,
    PostbackRule,
    TrackingLink,
)

Condition = Any  # a Piccolo `Where` or combination of them

# How each table's rows lead to their partner. A table missing here shows a partner
# nothing, so a new table is private until its path is written down.
_OWNED_BY: dict[type[Table], Callable[[uuid.UUID], Condition]] = {
    Partner: lambda partner_id: Partner.id == partner_id,
    TrackingLink: lambda partner_id: TrackingLink.partner == partner_id,
    # A click without a tracking link (createClick's, by an unbound key) is no partner's.
    Click: lambda partner_id: Click.tracking_link._.partner == partner_id,
    Conversion: lambda partner_id: Conversion.click._.tracking_link._.partner == partner_id,
    ConversionStatusChange: lambda partner_id: (
        ConversionStatusChange.conversion._.click._.tracking_link._.partner == partner_id
    ),
    # A partner's links need their offers; offers no link of it promotes stay hidden.
    Offer: lambda partner_id: Offer.id.is_in(
        TrackingLink.select(TrackingLink.offer).where(TrackingLink.partner == partner_id)
    ),
    PostbackRule: lambda partner_id: PostbackRule.partner == partner_id,
    PostbackDelivery: lambda partner_id: PostbackDelivery.rule._.partner == partner_id,
    # Fires on its links' clicks; a fire on no such click, or on a click without a
    # link, is no partner's.
    FireRejection: lambda partner_id: FireRejection.partner == partner_id,
}


@dataclass(frozen=True)
class Access:
    """What one caller sees: every partner's data, or one partner's (`partner_id`)."""

    partner_id: uuid.UUID | None = None

    @property
    def is_everything(self) -> bool:
        return self.partner_id is None

    def conditions(self, table: type[Table]) -> list[Condition]:
        """The conditions that keep a read of `table` within this access."""
        if self.partner_id is None:
            return []
        owned_by = _OWNED_BY.get(table)
        if owned_by is None:
            # A primary key is never null: no row at all.
            return [table._meta.primary_key.is_null()]
        return [owned_by(self.partner_id)]

    def report_partners(self) -> list[uuid.UUID]:
        """The partner an aggregate over clicks and their conversions (the report,
        models/store/report_sql.py) keeps to through each click's tracking link, as
        `conditions(Click)` does row by row: none for everything. A click without a
        link is no partner's, so a partner's aggregate never counts it."""
        return [] if self.partner_id is None else [self.partner_id]


# The operator's own view: admin and unbound keys, the CLI, the tracking link.
EVERYTHING = Access()
