"""DataLoaders, created afresh for every request so nothing is cached across requests.

Each turns the per-object lookups of one request into a fixed number of statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from strawberry.dataloader import DataLoader

from models import queries
from models.conversion_service import ConversionRecord
from models.queries import ClickRecord, Cursor, Page


@dataclass(frozen=True)
class ClickConversionsKey:
    """One click's page of conversions; clicks asking the same page share a statement."""

    click_id: uuid.UUID
    first: int
    after: Cursor | None


async def _load_clicks(ids: list[uuid.UUID]) -> list[ClickRecord | None]:
    found = await queries.clicks_by_ids(ids)
    return [found.get(click_id) for click_id in ids]


async def _load_conversion_counts(click_ids: list[uuid.UUID]) -> list[int]:
    counts = await queries.count_conversions_of_clicks(click_ids)
    return [counts[click_id] for click_id in click_ids]


def _page_arguments(key: ClickConversionsKey) -> tuple[int, str]:
    return key.first, repr(key.after)


async def _load_conversion_pages(
    keys: Sequence[ClickConversionsKey],
) -> list[Page[ConversionRecord]]:
    pages: dict[ClickConversionsKey, Page[ConversionRecord]] = {}
    for _, same_page in groupby(sorted(keys, key=_page_arguments), key=_page_arguments):
        group = list(same_page)
        by_click = await queries.conversion_pages_of_clicks(
            [key.click_id for key in group], group[0].first, group[0].after
        )
        pages.update({key: by_click[key.click_id] for key in group})
    return [pages[key] for key in keys]


@dataclass(frozen=True)
class Loaders:
    click_by_id: DataLoader[uuid.UUID, ClickRecord | None]
    conversion_count_of_click: DataLoader[uuid.UUID, int]
    conversion_page_of_click: DataLoader[ClickConversionsKey, Page[ConversionRecord]]


def create_loaders() -> Loaders:
    return Loaders(
        click_by_id=DataLoader(load_fn=_load_clicks),
        conversion_count_of_click=DataLoader(load_fn=_load_conversion_counts),
        conversion_page_of_click=DataLoader(load_fn=_load_conversion_pages),
    )
