"""Reading clicks: `READS` (by id, keyset pages, counts) and the filter for pages."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.clicks.records import SUB_ID_NAMES, ClickRecord, SubIds
from models.store.reads import TableReads
from models.store.tables import Click, Stage

READS = TableReads(Click, ClickRecord, Click.created_at)


@dataclass(kw_only=True)
class ClickFilter(SubIds):
    """Every given field must match, each of s1 to s5 exactly; `created_from` is inclusive,
    `created_to` exclusive."""

    player_id: str | None = None
    stage: Stage | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None

    def conditions(self) -> list[Any]:
        conditions: list[Any] = []
        if self.player_id is not None:
            conditions.append(Click.player_id == self.player_id)
        if self.stage is not None:
            conditions.append(Click.stage == self.stage.value)
        # SQLite compares timestamps as the UTC text Piccolo writes; PostgreSQL does not care.
        if self.created_from is not None:
            conditions.append(Click.created_at >= self.created_from.astimezone(UTC))
        if self.created_to is not None:
            conditions.append(Click.created_at < self.created_to.astimezone(UTC))
        if self.tracking_link_id is not None:
            conditions.append(Click.tracking_link == self.tracking_link_id)
        if self.country is not None:
            # Stored upper-case, as ISO 3166-1 writes it; dashboards may send either case.
            conditions.append(Click.country == self.country.upper())
        for name in SUB_ID_NAMES:
            if (value := getattr(self, name)) is not None:
                conditions.append(getattr(Click, name) == value)
        return conditions
