"""DataLoaders, created afresh for every request so nothing is cached across requests.

Each turns the per-object lookups of one request into a fixed number of statements,
and each reads within the request's `Access`: an id outside it loads as None.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader

from models.clicks import queries as clicks
from models.clicks.records import ClickRecord
from models.conversions import queries as conversions
from models.conversions import status
from models.conversions.records import ConversionRecord
from models.conversions.status import StatusChangeRecord
from models.paging import Cursor, Page
from models.partners import partners
from models.partners.access import Access
from models.partners.partners import PartnerRecord
from models.postbacks import rules
from models.postbacks.rules import PostbackRuleRecord
from models.tracking import links, offers
from models.tracking.links import TrackingLinkRecord
from models.tracking.offers import OfferRecord

RecordT = TypeVar("RecordT")


@dataclass(frozen=True)
class PageKey:
    """One group's page (a click's conversions, a partner's links); groups asking the
    same page share a statement."""

    group_id: uuid.UUID
    first: int
    after: Cursor | None


ByIds = Callable[[Access, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, RecordT]]]
CountsOf = Callable[[Access, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, int]]]
PagesOf = Callable[
    [Access, Sequence[uuid.UUID], int, Cursor | None], Awaitable[dict[uuid.UUID, Page[RecordT]]]
]


def _by_id(by_ids: ByIds[RecordT], access: Access) -> DataLoader[uuid.UUID, RecordT | None]:
    """Records by id within `access`, one answer per key, in order."""

    async def load(ids: list[uuid.UUID]) -> list[RecordT | None]:
        found = await by_ids(access, ids)
        return [found.get(id_) for id_ in ids]

    return DataLoader(load_fn=load)


def _counts_of(counts_of: CountsOf, access: Access) -> DataLoader[uuid.UUID, int]:
    """How many records each group has within `access`."""

    async def load(group_ids: list[uuid.UUID]) -> list[int]:
        counts = await counts_of(access, group_ids)
        return [counts[group_id] for group_id in group_ids]

    return DataLoader(load_fn=load)


def _pages_of(pages_of: PagesOf[RecordT], access: Access) -> DataLoader[PageKey, Page[RecordT]]:
    """Each group's page of records within `access`, in two statements per page asked."""

    async def load(keys: Sequence[PageKey]) -> list[Page[RecordT]]:
        # Usually one page asked: every node of a list asks for the same `first` and `after`.
        groups_by_page: dict[tuple[int, Cursor | None], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            groups_by_page[key.first, key.after].append(key.group_id)
        pages: dict[PageKey, Page[RecordT]] = {}
        for (first, after), group_ids in groups_by_page.items():
            by_group = await pages_of(access, group_ids, first, after)
            for group_id in group_ids:
                pages[PageKey(group_id, first, after)] = by_group[group_id]
        return [pages[key] for key in keys]

    return DataLoader(load_fn=load)


def _lists_of(
    lists_of: Callable[[Access, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, list[RecordT]]]],
    access: Access,
) -> DataLoader[uuid.UUID, list[RecordT]]:
    """Each group's whole list of records within `access` (lists that stay short)."""

    async def load(group_ids: list[uuid.UUID]) -> list[list[RecordT]]:
        lists = await lists_of(access, group_ids)
        return [lists[group_id] for group_id in group_ids]

    return DataLoader(load_fn=load)


@dataclass(frozen=True)
class Loaders:
    click_by_id: DataLoader[uuid.UUID, ClickRecord | None]
    conversion_by_id: DataLoader[uuid.UUID, ConversionRecord | None]
    conversion_count_of_click: DataLoader[uuid.UUID, int]
    conversion_page_of_click: DataLoader[PageKey, Page[ConversionRecord]]
    offer_by_id: DataLoader[uuid.UUID, OfferRecord | None]
    tracking_link_by_id: DataLoader[uuid.UUID, TrackingLinkRecord | None]
    partner_by_id: DataLoader[uuid.UUID, PartnerRecord | None]
    tracking_link_count_of_partner: DataLoader[uuid.UUID, int]
    tracking_link_page_of_partner: DataLoader[PageKey, Page[TrackingLinkRecord]]
    postback_rule_by_id: DataLoader[uuid.UUID, PostbackRuleRecord | None]
    postback_rules_of_partner: DataLoader[uuid.UUID, list[PostbackRuleRecord]]
    status_history_of_conversion: DataLoader[uuid.UUID, list[StatusChangeRecord]]


def create_loaders(access: Access) -> Loaders:
    """This request's loaders, every one reading within `access`."""
    return Loaders(
        click_by_id=_by_id(clicks.READS.by_ids, access),
        conversion_by_id=_by_id(conversions.READS.by_ids, access),
        conversion_count_of_click=_counts_of(conversions.count_of_clicks, access),
        conversion_page_of_click=_pages_of(conversions.pages_of_clicks, access),
        offer_by_id=_by_id(offers.READS.by_ids, access),
        tracking_link_by_id=_by_id(links.READS.by_ids, access),
        partner_by_id=_by_id(partners.READS.by_ids, access),
        tracking_link_count_of_partner=_counts_of(links.count_of_partners, access),
        tracking_link_page_of_partner=_pages_of(links.pages_of_partners, access),
        postback_rule_by_id=_by_id(rules.rules_by_ids, access),
        postback_rules_of_partner=_lists_of(rules.rules_of_partners, access),
        status_history_of_conversion=_lists_of(status.history_of_conversions, access),
    )
