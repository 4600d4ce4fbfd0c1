"""The report's two statements: clicks counted by group, and conversions summed by group
and currency (models/reports/report.py merges them).

Days and hours start in the report's time zone. PostgreSQL has the zone database:
`date_trunc('hour', ts, zone)` and `ts AT TIME ZONE zone`. SQLite has none, so the
zone's UTC offsets over the report's range are worked out in Python (zoneinfo) and
written into the statement as a CASE over the instants where the offset changes: every
timestamp is shifted by the offset in force at that instant, which is exact for zones
with :30 and :45 offsets and across DST changes alike. A local hour is grouped with its
offset, so the hour a DST end repeats stays two groups.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from models.store.engine import current_engine, is_postgres
from models.store.tables import Click, Currency

# The dimensions a statement can group by, as models/reports/report.py names them.
DAY, HOUR, OFFER, PARTNER, TRACKING_LINK, COUNTRY = (
    "day",
    "hour",
    "offer",
    "partner",
    "tracking_link",
    "country",
)
# The dimensions that are a column of the click or of its tracking link.
_CLICK_COLUMNS = {
    OFFER: "tracking_link.offer",
    PARTNER: "tracking_link.partner",
    TRACKING_LINK: "click.tracking_link",
    COUNTRY: "click.country",
}
# Dimensions that need the click's tracking link joined (left: a click without a link
# is counted too, under no offer and no partner).
_LINK_DIMENSIONS = {OFFER, PARTNER}
# How far apart two instants may be and still be told apart by the bisection below.
_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class ReportScope:
    """Which clicks and conversions a report counts, and how it groups them."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    group_by: tuple[str, ...]
    statuses: tuple[str, ...]
    offer_id: uuid.UUID | None = None
    # Every one must be the click's link's partner: the one asked and the key's own.
    partner_ids: tuple[uuid.UUID, ...] = ()
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None


@dataclass(frozen=True)
class GroupKey:
    """One group's dimensions; those not grouped by stay None."""

    day: date | None = None
    # In UTC: two local hours a DST end repeats compare equal in the zone's tzinfo.
    hour: datetime | None = None
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None


@dataclass
class ConversionSums:
    installs: int = 0
    registrations: int = 0
    deposits: int = 0
    first_deposits: int = 0
    # Minor units per currency ("eur"), of the deposits that carried an amount.
    amounts: dict[str, int] = field(default_factory=dict)


def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) in force from `start`, then each change before `end`:
    `[(start, offset), (instant, new offset), ...]`. Checked hour by hour, then bisected
    to the second, so a change between two checks is found exactly."""

    def offset_at(instant: datetime) -> int:
        offset = instant.astimezone(zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())

    changes = [(start, offset_at(start))]
    checked = start
    while checked < end:
        following = min(checked + timedelta(hours=1), end)
        if offset_at(following) != changes[-1][1]:
            before, after = checked, following
            while after - before > _RESOLUTION:
                middle = before + (after - before) / 2
                if offset_at(middle) == changes[-1][1]:
                    before = middle
                else:
                    after = middle
            changes.append((after, offset_at(after)))
        checked = following
    return changes


class _Statement:
    """One statement's text and its arguments, in the order their `{}` appear."""

    def __init__(self, scope: ReportScope, postgres: bool) -> None:
        self.scope = scope
        self.postgres = postgres
        self.arguments: list[Any] = []
        self._offset_changes: list[tuple[datetime, int]] | None = None

    def argument(self, value: Any) -> str:
        self.arguments.append(value)
        return "{}"

    def _sqlite_shift(self, timestamp: str, *, as_modifier: bool) -> str:
        """The offset in force at `timestamp`: as a date modifier ('+19800 seconds') or as
        seconds. SQLite compares the stored UTC texts, which sort as instants."""
        if self._offset_changes is None:
            scope = self.scope
            self._offset_changes = offset_changes(scope.zone, scope.start, scope.end)
        changes = self._offset_changes

        def shown(offset: int) -> Any:
            return f"{offset:+d} seconds" if as_modifier else offset

        cases = [
            f"WHEN {timestamp} < {self.argument(instant)} THEN {self.argument(shown(offset))}"
            for (_, offset), (instant, _) in itertools.pairwise(changes)
        ]
        last = self.argument(shown(changes[-1][1]))
        return f"CASE {' '.join(cases)} ELSE {last} END" if cases else last

    def _local_day(self, timestamp: str) -> str:
        if self.postgres:
            return f"({timestamp} AT TIME ZONE {self.argument(self.scope.zone.key)})::date"
        return f"date({timestamp}, {self._sqlite_shift(timestamp, as_modifier=True)})"

    def _local_hour(self, timestamp: str) -> list[tuple[str, str]]:
        if self.postgres:
            zone = self.argument(self.scope.zone.key)
            return [(f"date_trunc('hour', {timestamp}, {zone})", "hour")]
        shift = self._sqlite_shift(timestamp, as_modifier=True)
        return [
            (f"strftime('%Y-%m-%d %H:00:00', {timestamp}, {shift})", "hour"),
            (self._sqlite_shift(timestamp, as_modifier=False), "hour_offset"),
        ]

    def dimensions(self, timestamp: str) -> list[tuple[str, str]]:
        """(expression, alias) of each grouped dimension, `timestamp` deciding day and hour."""
        columns: list[tuple[str, str]] = []
        for dimension in self.scope.group_by:
            if dimension == DAY:
                columns.append((self._local_day(timestamp), DAY))
            elif dimension == HOUR:
                columns += self._local_hour(timestamp)
            else:
                columns.append((_CLICK_COLUMNS[dimension], dimension))
        return columns

    def click_conditions(self) -> list[str]:
        scope = self.scope
        conditions = []
        if scope.offer_id is not None:
            conditions.append(f"tracking_link.offer = {self.argument(scope.offer_id)}")
        conditions += [
            f"tracking_link.partner = {self.argument(partner_id)}"
            for partner_id in scope.partner_ids
        ]
        if scope.tracking_link_id is not None:
            conditions.append(f"click.tracking_link = {self.argument(scope.tracking_link_id)}")
        if scope.country is not None:
            conditions.append(f"click.country = {self.argument(scope.country)}")
        return conditions

    def needs_link(self) -> bool:
        scope = self.scope
        return bool(
            _LINK_DIMENSIONS & set(scope.group_by)
            or scope.offer_id is not None
            or scope.partner_ids
        )

    def needs_click(self) -> bool:
        scope = self.scope
        return (
            self.needs_link()
            or bool({TRACKING_LINK, COUNTRY} & set(scope.group_by))
            or scope.tracking_link_id is not None
            or scope.country is not None
        )


def click_count_statement(scope: ReportScope, postgres: bool, limit: int) -> tuple[str, list[Any]]:
    """Clicks by group, at most `limit` groups. Public so a benchmark can EXPLAIN it."""
    statement = _Statement(scope, postgres)
    dimensions = statement.dimensions("click.created_at")
    start, end = statement.argument(scope.start), statement.argument(scope.end)
    conditions = [f"click.created_at >= {start}", f"click.created_at < {end}"]
    conditions += statement.click_conditions()
    join = (
        " LEFT JOIN tracking_link ON tracking_link.id = click.tracking_link"
        if statement.needs_link()
        else ""
    )
    columns = [*dimensions, ("COUNT(*)", "clicks")]
    # By position: an alias may also name a column of a joined table.
    group = [str(position) for position in range(1, len(dimensions) + 1)]
    sql = (
        f"SELECT {', '.join(f'{expression} AS {alias}' for expression, alias in columns)}"
        f" FROM click{join} WHERE {' AND '.join(conditions)}"
        + (f" GROUP BY {', '.join(group)}" if group else "")
        + f" LIMIT {statement.argument(limit)}"
    )
    return sql, statement.arguments


def conversion_sum_statement(
    scope: ReportScope, postgres: bool, limit: int
) -> tuple[str, list[Any]]:
    """Conversions by group and currency, at most `limit` rows; each conversion counts
    under its click's link, offer, partner and country, at its `occurred_at`."""
    statement = _Statement(scope, postgres)
    dimensions = statement.dimensions("conversion.occurred_at")
    start, end = statement.argument(scope.start), statement.argument(scope.end)
    statuses = ", ".join(statement.argument(status) for status in scope.statuses)
    conditions = [
        f"conversion.occurred_at >= {start}",
        f"conversion.occurred_at < {end}",
        f"conversion.status IN ({statuses})",
        *statement.click_conditions(),
    ]
    join = ""
    if statement.needs_click():
        join = " JOIN click ON click.id = conversion.click"
    if statement.needs_link():
        join += " LEFT JOIN tracking_link ON tracking_link.id = click.tracking_link"
    columns = [
        *dimensions,
        ("conversion.currency", "currency"),
        ("SUM(CASE WHEN conversion.type = 'install' THEN 1 ELSE 0 END)", "installs"),
        ("SUM(CASE WHEN conversion.type = 'registration' THEN 1 ELSE 0 END)", "registrations"),
        ("SUM(CASE WHEN conversion.type = 'deposit' THEN 1 ELSE 0 END)", "deposits"),
        ("SUM(CASE WHEN conversion.is_first_deposit THEN 1 ELSE 0 END)", "first_deposits"),
        ("SUM(conversion.amount_minor)", "amount_minor"),
    ]
    group = [str(position) for position in range(1, len(dimensions) + 2)]
    sql = (
        f"SELECT {', '.join(f'{expression} AS {alias}' for expression, alias in columns)}"
        f" FROM conversion{join} WHERE {' AND '.join(conditions)}"
        f" GROUP BY {', '.join(group)} LIMIT {statement.argument(limit)}"
    )
    return sql, statement.arguments


def _uuid(value: object) -> uuid.UUID | None:
    # SQLite hands ids of a grouped join back as text, PostgreSQL as UUIDs.
    return None if value is None else uuid.UUID(str(value))


def _key(row: Mapping[str, Any]) -> GroupKey:
    day = row.get("day")
    hour = row.get("hour")
    if isinstance(hour, str):
        # SQLite: the local wall hour and the offset in force, back to the instant.
        offset = timedelta(seconds=int(row["hour_offset"]))
        hour = (datetime.fromisoformat(hour) - offset).replace(tzinfo=UTC)
    return GroupKey(
        day=date.fromisoformat(day) if isinstance(day, str) else day,
        hour=None if hour is None else hour.astimezone(UTC),
        offer_id=_uuid(row.get("offer")),
        partner_id=_uuid(row.get("partner")),
        tracking_link_id=_uuid(row.get("tracking_link")),
        country=row.get("country"),
    )


async def click_counts(scope: ReportScope, limit: int) -> dict[GroupKey, int]:
    """Clicks per group; at most `limit` groups (the caller asks one more than it allows)."""
    sql, arguments = click_count_statement(scope, is_postgres(current_engine()), limit)
    rows = await Click.raw(sql, *arguments)
    return {_key(row): int(row["clicks"]) for row in rows}


async def conversion_sums(scope: ReportScope, group_limit: int) -> dict[GroupKey, ConversionSums]:
    """Conversion counts and deposit amounts per group; at most `group_limit` groups are
    read whole (a group has a row per currency, and one without)."""
    row_limit = group_limit * (len(Currency) + 1)
    sql, arguments = conversion_sum_statement(scope, is_postgres(current_engine()), row_limit)
    sums: dict[GroupKey, ConversionSums] = {}
    for row in await Click.raw(sql, *arguments):
        group = sums.setdefault(_key(row), ConversionSums())
        group.installs += int(row["installs"])
        group.registrations += int(row["registrations"])
        group.deposits += int(row["deposits"])
        group.first_deposits += int(row["first_deposits"])
        amount = row["amount_minor"]
        if row["currency"] is not None and amount is not None:
            # PostgreSQL sums a bigint as numeric: an exact Decimal, never a float.
            assert not isinstance(amount, float)
            group.amounts[row["currency"]] = int(Decimal(amount))
    return sums
