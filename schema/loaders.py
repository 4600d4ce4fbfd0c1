"""DataLoaders, created afresh for every request so nothing is cached across requests.

Each turns the per-object lookups of one request into a fixed number of statements.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from models import queries, tracking
from models.outcomes import ConversionRecord
from models.queries import ClickRecord, Cursor, Page
from models.tracking import OfferRecord, TrackingLinkRecord


@dataclass(frozen=True)
class ClickConversionsKey:
    """One click's page of conversions; clicks asking the same page share a statement."""

    click_id: uuid.UUID
    first: int
    after: Cursor | None


async def _load_clicks(ids: list[uuid.UUID]) -> list[ClickRecord | None]:
    found = await queries.clicks_by_ids(ids)
    return [found.get(click_id) for click_id in ids]


async def _load_conversions(ids: list[uuid.UUID]) -> list[ConversionRecord | None]:
    found = await queries.conversions_by_ids(ids)
    return [found.get(conversion_id) for conversion_id in ids]


async def _load_conversion_counts(click_ids: list[uuid.UUID]) -> list[int]:
    counts = await queries.count_conversions_of_clicks(click_ids)
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
        by_click = await queries.conversion_pages_of_clicks(click_ids, first, after)
        for click_id in click_ids:
            pages[ClickConversionsKey(click_id, first, after)] = by_click[click_id]
    return [pages[key] for key in keys]


async def _load_offers(ids: list[uuid.UUID]) -> list[OfferRecord | None]:
    found = await tracking.offers_by_ids(ids)
    return [found.get(offer_id) for offer_id in ids]


async def _load_tracking_links(ids: list[uuid.UUID]) -> list[TrackingLinkRecord | None]:
    found = await tracking.tracking_links_by_ids(ids)
    return [found.get(link_id) for link_id in ids]


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
        click_by_id=DataLoader(load_fn=_load_clicks),
        conversion_by_id=DataLoader(load_fn=_load_conversions),
        conversion_count_of_click=DataLoader(load_fn=_load_conversion_counts),
        conversion_page_of_click=DataLoader(load_fn=_load_conversion_pages),
        offer_by_id=DataLoader(load_fn=_load_offers),
        tracking_link_by_id=DataLoader(load_fn=_load_tracking_links),
    )
