"""DataLoaders, created afresh for every request so nothing is cached across requests.

Each turns the per-object lookups of one request into a fixed number of statements.
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
from models.conversions.records import ConversionRecord
from models.paging import Cursor, Page
from models.tracking import links, offers
from models.tracking.links import TrackingLinkRecord
from models.tracking.offers import OfferRecord

RecordT = TypeVar("RecordT")


@dataclass(frozen=True)
class ClickConversionsKey:
    """One click's page of conversions; clicks asking the same page share a statement."""

    click_id: uuid.UUID
    first: int
    after: Cursor | None


def _in_order(
    fetch: Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, RecordT]]],
) -> Callable[[list[uuid.UUID]], Awaitable[list[RecordT | None]]]:
    """A DataLoader's batch function from a look-up by ids: one answer per key, in order."""

    async def load(ids: list[uuid.UUID]) -> list[RecordT | None]:
        found = await fetch(ids)
        return [found.get(id_) for id_ in ids]

    return load


async def _load_conversion_counts(click_ids: list[uuid.UUID]) -> list[int]:
    counts = await conversions.count_of_clicks(click_ids)
    return [counts[click_id] for click_id in click_ids]


async def _load_conversion_pages(
    keys: Sequence[ClickConversionsKey],
) -> list[Page[ConversionRecord]]:
    # Usually one group: every click of a page asks for the same `first` and `after`.
    clicks_by_page: dict[tuple[int, Cursor | None], list[uuid.UUID]] = defaultdict(list)
    for key in keys:
        clicks_by_page[key.first, key.after].append(key.click_id)
    pages: dict[ClickConversionsKey, Page[ConversionRecord]] = {}
    for (first, after), click_ids in clicks_by_page.items():
        by_click = await conversions.pages_of_clicks(click_ids, first, after)
        for click_id in click_ids:
            pages[ClickConversionsKey(click_id, first, after)] = by_click[click_id]
    return [pages[key] for key in keys]


@dataclass(frozen=True)
class Loaders:
    click_by_id: DataLoader[uuid.UUID, ClickRecord | None]
    conversion_by_id: DataLoader[uuid.UUID, ConversionRecord | None]
    conversion_count_of_click: DataLoader[uuid.UUID, int]
    conversion_page_of_click: DataLoader[ClickConversionsKey, Page[ConversionRecord]]
    offer_by_id: DataLoader[uuid.UUID, OfferRecord | None]
    tracking_link_by_id: DataLoader[uuid.UUID, TrackingLinkRecord | None]


def create_loaders() -> Loaders:
    return Loaders(
        click_by_id=DataLoader(load_fn=_in_order(clicks.READS.by_ids)),
        conversion_by_id=DataLoader(load_fn=_in_order(conversions.READS.by_ids)),
        conversion_count_of_click=DataLoader(load_fn=_load_conversion_counts),
        conversion_page_of_click=DataLoader(load_fn=_load_conversion_pages),
        offer_by_id=DataLoader(load_fn=_in_order(offers.READS.by_ids)),
        tracking_link_by_id=DataLoader(load_fn=_in_order(links.READS.by_ids)),
    )
