"""Read side: clicks and conversions, filtered and paged with keyset cursors.

Pages run newest first on `(occurred_at, id)` for conversions and `(created_at, id)`
for clicks. A cursor is the sort key of the last row a client saw, so rows inserted
while a client pages never shift the rows after it: nothing repeats, nothing hides.
The `*_query` builders are public so a test can EXPLAIN exactly what runs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from piccolo.columns import Column
from piccolo.query import Select
from piccolo.query.functions.aggregate import Count

from models.clicks import SUB_ID_NAMES
from models.outcomes import ConversionRecord
from models.tables import Click, Conversion, ConversionType, Currency, MarketingType, Stage


class InvalidCursorError(ValueError):
    """A cursor that this API did not hand out, or one for another kind of row."""


@dataclass(frozen=True, order=True)
class Cursor:
    """The sort key of a row: its timestamp, then its id to break ties."""

    timestamp: datetime
    id: uuid.UUID

    def encode(self, kind: str) -> str:
        raw = f"{kind}|{self.timestamp.astimezone(UTC).isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, kind: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            cursor_kind, timestamp, row_id = raw.split("|")
            if cursor_kind != kind:
                raise ValueError(f"a {cursor_kind} cursor, not a {kind} cursor")
            parsed = datetime.fromisoformat(timestamp)
            if parsed.tzinfo is None:
                raise ValueError("a cursor timestamp without an offset")
            return cls(parsed.astimezone(UTC), uuid.UUID(row_id))
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise InvalidCursorError(f"{value!r} is not a valid {kind} cursor") from error


CONVERSION_CURSOR = "conversion"
CLICK_CURSOR = "click"


@dataclass(frozen=True, kw_only=True)
class ClickRecord:
    id: uuid.UUID
    created_at: datetime
    stage: Stage
    player_id: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    tracking_link_id: uuid.UUID | None
    type: MarketingType | None
    sub_ids: dict[str, str | None]
    browser_family: str | None
    os_family: str | None
    device_family: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ClickRecord:
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            stage=Stage(row["stage"]),
            player_id=row["player_id"],
            ip=row["ip"],
            user_agent=row["user_agent"],
            referrer=row["referrer"],
            country=row["country"],
            tracking_link_id=row["tracking_link"],
            type=MarketingType(row["type"]) if row["type"] else None,
            sub_ids={name: row[name] for name in SUB_ID_NAMES},
            browser_family=row["browser_family"],
            os_family=row["os_family"],
            device_family=row["device_family"],
        )

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


def conversion_cursor(conversion: ConversionRecord) -> Cursor:
    return Cursor(conversion.occurred_at, conversion.id)


@dataclass(frozen=True, kw_only=True)
class ConversionFilter:
    """Every given field must match; `occurred_from` is inclusive, `occurred_to` exclusive."""

    click_id: uuid.UUID | None = None
    player_id: str | None = None
    transaction_id: str | None = None
    type: ConversionType | None = None
    currency: Currency | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ClickFilter:
    """Every given field must match; `created_from` is inclusive, `created_to` exclusive."""

    player_id: str | None = None
    stage: Stage | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None
    # s1 to s5: each given one must match exactly.
    sub_ids: dict[str, str] = field(default_factory=dict)


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    has_next_page: bool


def _after(timestamp: Column, row_id: Column, cursor: Cursor) -> Any:
    # `timestamp <= t` alone is an index range condition; the OR only breaks ties.
    return (timestamp <= cursor.timestamp) & ((timestamp < cursor.timestamp) | (row_id < cursor.id))


def _utc(moment: datetime) -> datetime:
    # SQLite compares timestamps as the UTC text Piccolo writes; PostgreSQL does not care.
    return moment.astimezone(UTC)


def _conversion_conditions(conversion_filter: ConversionFilter) -> list[Any]:
    conditions: list[Any] = []
    if conversion_filter.click_id is not None:
        conditions.append(Conversion.click == conversion_filter.click_id)
    if conversion_filter.player_id is not None:
        conditions.append(Conversion.player_id == conversion_filter.player_id)
    if conversion_filter.transaction_id is not None:
        conditions.append(Conversion.transaction_id == conversion_filter.transaction_id)
    if conversion_filter.type is not None:
        conditions.append(Conversion.type == conversion_filter.type.value)
    if conversion_filter.currency is not None:
        conditions.append(Conversion.currency == conversion_filter.currency.value)
    if conversion_filter.occurred_from is not None:
        conditions.append(Conversion.occurred_at >= _utc(conversion_filter.occurred_from))
    if conversion_filter.occurred_to is not None:
        conditions.append(Conversion.occurred_at < _utc(conversion_filter.occurred_to))
    return conditions


def _click_conditions(click_filter: ClickFilter) -> list[Any]:
    conditions: list[Any] = []
    if click_filter.player_id is not None:
        conditions.append(Click.player_id == click_filter.player_id)
    if click_filter.stage is not None:
        conditions.append(Click.stage == click_filter.stage.value)
    if click_filter.created_from is not None:
        conditions.append(Click.created_at >= _utc(click_filter.created_from))
    if click_filter.created_to is not None:
        conditions.append(Click.created_at < _utc(click_filter.created_to))
    if click_filter.tracking_link_id is not None:
        conditions.append(Click.tracking_link == click_filter.tracking_link_id)
    if click_filter.country is not None:
        # Stored upper-case, as ISO 3166-1 writes it; dashboards may send either case.
        conditions.append(Click.country == click_filter.country.upper())
    for name, value in click_filter.sub_ids.items():
        conditions.append(getattr(Click, name) == value)
    return conditions


def conversions_page_query(
    conversion_filter: ConversionFilter, first: int, after: Cursor | None
) -> Select:
    """One row more than the page, to tell whether another page follows."""
    query = Conversion.select()
    for condition in _conversion_conditions(conversion_filter):
        query = query.where(condition)
    if after is not None:
        query = query.where(_after(Conversion.occurred_at, Conversion.id, after))
    return query.order_by(Conversion.occurred_at, Conversion.id, ascending=False).limit(first + 1)


def clicks_page_query(click_filter: ClickFilter, first: int, after: Cursor | None) -> Select:
    query = Click.select()
    for condition in _click_conditions(click_filter):
        query = query.where(condition)
    if after is not None:
        query = query.where(_after(Click.created_at, Click.id, after))
    return query.order_by(Click.created_at, Click.id, ascending=False).limit(first + 1)


def _page(rows: list[RowT], first: int) -> Page[RowT]:
    return Page(rows=rows[:first], has_next_page=len(rows) > first)


async def conversions_page(
    conversion_filter: ConversionFilter, first: int, after: Cursor | None = None
) -> Page[ConversionRecord]:
    rows = await conversions_page_query(conversion_filter, first, after)
    return _page([ConversionRecord.from_row(row) for row in rows], first)


async def clicks_page(
    click_filter: ClickFilter, first: int, after: Cursor | None = None
) -> Page[ClickRecord]:
    rows = await clicks_page_query(click_filter, first, after)
    return _page([ClickRecord.from_row(row) for row in rows], first)


async def count_conversions(conversion_filter: ConversionFilter) -> int:
    query = Conversion.count()
    for condition in _conversion_conditions(conversion_filter):
        query = query.where(condition)
    return await query


async def count_clicks(click_filter: ClickFilter) -> int:
    query = Click.count()
    for condition in _click_conditions(click_filter):
        query = query.where(condition)
    return await query


async def conversions_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ConversionRecord]:
    if not ids:
        return {}
    rows = await Conversion.select().where(Conversion.id.is_in(list(ids)))
    return {record.id: record for record in map(ConversionRecord.from_row, rows)}


async def clicks_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ClickRecord]:
    if not ids:
        return {}
    rows = await Click.select().where(Click.id.is_in(list(ids)))
    return {record.id: record for record in map(ClickRecord.from_row, rows)}


async def count_conversions_of_clicks(click_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    counts = dict.fromkeys(click_ids, 0)
    if not click_ids:
        return counts
    rows = (
        await Conversion.select(Conversion.click, Count(alias="total"))
        .where(Conversion.click.is_in(list(click_ids)))
        .group_by(Conversion.click)
    )
    counts.update({row["click"]: row["total"] for row in rows})
    return counts


def _placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)


async def conversion_pages_of_clicks(
    click_ids: Sequence[uuid.UUID], first: int, after: Cursor | None = None
) -> dict[uuid.UUID, Page[ConversionRecord]]:
    """The same page of conversions for many clicks, in two statements whatever their number.

    A window function numbers each click's conversions newest first, so every click
    gets at most `first + 1` rows however many conversions it has.
    """
    pages: dict[uuid.UUID, Page[ConversionRecord]] = {
        click_id: Page(rows=[], has_next_page=False) for click_id in click_ids
    }
    if not click_ids:
        return pages
    arguments: list[Any] = list(click_ids)
    after_condition = ""
    if after is not None:
        after_condition = "AND occurred_at <= {} AND (occurred_at < {} OR id < {})"
        arguments += [after.timestamp, after.timestamp, after.id]
    arguments.append(first + 1)
    ranked = await Conversion.raw(
        "SELECT id FROM ("
        " SELECT id, ROW_NUMBER() OVER"
        "  (PARTITION BY click ORDER BY occurred_at DESC, id DESC) AS position"
        f" FROM {Conversion._meta.tablename}"
        f" WHERE click IN ({_placeholders(len(click_ids))}) {after_condition}"
        ") AS ranked WHERE position <= {}",
        *arguments,
    )
    # SQLite hands the id back as text through the subquery, PostgreSQL as a UUID.
    ids = [uuid.UUID(str(row["id"])) for row in ranked]
    by_click: dict[uuid.UUID, list[ConversionRecord]] = defaultdict(list)
    for record in (await conversions_by_ids(ids)).values():
        by_click[record.click_id].append(record)
    for click_id, records in by_click.items():
        records.sort(key=conversion_cursor, reverse=True)
        pages[click_id] = _page(records, first)
    return pages
