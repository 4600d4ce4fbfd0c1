"""The report: clicks and conversions counted by day, hour, offer, partner, tracking link
and country, in a time zone (SPEC.md part two, "Reports and live updates for dashboards").

Clicks count at their creation, conversions at `occurredAt`, each conversion under its
click's offer, partner, link and country; `statuses` filters conversions, never clicks.
Money is summed as integer minor units per currency. Rates are per click. Only the
metrics a caller selects are computed: no conversion metric, no conversion statement.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from models.errors import FieldError
from models.partners import partners
from models.partners.access import Access
from models.store import report_sql
from models.store.report_sql import ConversionSums, GroupKey, ReportScope
from models.store.tables import ConversionStatus, Currency
from models.tracking import links, offers

MAX_DAYS = 366
MAX_DIMENSIONS = 3
MAX_ROWS = 10_000
DEFAULT_STATUSES = (ConversionStatus.APPROVED, ConversionStatus.PENDING)


class ReportDimension(enum.StrEnum):
    """What a report's rows are grouped by; the values are report_sql's names."""

    DAY = report_sql.DAY
    HOUR = report_sql.HOUR
    OFFER = report_sql.OFFER
    PARTNER = report_sql.PARTNER
    TRACKING_LINK = report_sql.TRACKING_LINK
    COUNTRY = report_sql.COUNTRY


class Metric(enum.StrEnum):
    CLICKS = "clicks"
    INSTALLS = "installs"
    REGISTRATIONS = "registrations"
    DEPOSITS = "deposits"
    FIRST_DEPOSITS = "first_deposits"
    DEPOSIT_TOTALS = "deposit_totals"
    REGISTRATION_RATE = "registration_rate"
    FIRST_DEPOSIT_RATE = "first_deposit_rate"


# What each statement serves: the rates need both.
_CLICK_METRICS = {Metric.CLICKS, Metric.REGISTRATION_RATE, Metric.FIRST_DEPOSIT_RATE}
_CONVERSION_METRICS = set(Metric) - {Metric.CLICKS}


@dataclass(frozen=True)
class ReportFilter:
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None


@dataclass(frozen=True)
class ReportRequest:
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    group_by: Sequence[ReportDimension] = ()
    filter: ReportFilter = ReportFilter()
    statuses: Sequence[ConversionStatus] = DEFAULT_STATUSES


@dataclass(frozen=True)
class Metrics:
    clicks: int = 0
    installs: int = 0
    registrations: int = 0
    deposits: int = 0
    first_deposits: int = 0
    # Minor units per currency, for the deposits that carried an amount.
    deposit_totals: dict[Currency, int] = field(default_factory=dict)

    @property
    def registration_rate(self) -> float | None:
        return self.registrations / self.clicks if self.clicks else None

    @property
    def first_deposit_rate(self) -> float | None:
        return self.first_deposits / self.clicks if self.clicks else None

    def __add__(self, other: Metrics) -> Metrics:
        totals = dict(self.deposit_totals)
        for currency, amount in other.deposit_totals.items():
            totals[currency] = totals.get(currency, 0) + amount
        return Metrics(
            clicks=self.clicks + other.clicks,
            installs=self.installs + other.installs,
            registrations=self.registrations + other.registrations,
            deposits=self.deposits + other.deposits,
            first_deposits=self.first_deposits + other.first_deposits,
            deposit_totals=totals,
        )

    @classmethod
    def of(cls, clicks: int, sums: ConversionSums | None) -> Metrics:
        if sums is None:
            return cls(clicks=clicks)
        return cls(
            clicks=clicks,
            installs=sums.installs,
            registrations=sums.registrations,
            deposits=sums.deposits,
            first_deposits=sums.first_deposits,
            deposit_totals={Currency(code): amount for code, amount in sums.amounts.items()},
        )


@dataclass(frozen=True)
class ReportRow:
    """One group: the grouped dimensions set, the others None."""

    key: GroupKey
    metrics: Metrics
    zone: ZoneInfo

    @property
    def local_hour(self) -> datetime | None:
        """The hour's start in the report's zone, with the offset in force then."""
        return None if self.key.hour is None else self.key.hour.astimezone(self.zone)


@dataclass(frozen=True)
class Report:
    rows: list[ReportRow]
    totals: Metrics


@dataclass(frozen=True)
class InvalidReport:
    """The request breaks a rule (every bad field named), or asks for too many rows."""

    errors: list[FieldError]


ReportOutcome = Report | InvalidReport


@cache
def _zone_names() -> frozenset[str]:
    # Only IANA names: ZoneInfo would also open a path-like key or a POSIX TZ string.
    return frozenset(available_timezones())


def request_errors(request: ReportRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, value in (("from", request.start), ("to", request.end)):
        if value.tzinfo is None:
            errors.append(
                FieldError(name, "missing_offset", f"{{{name}}} must carry Z or an offset")
            )
    if not errors:
        if request.end <= request.start:
            errors.append(FieldError("to", "not_after_from", "{to} must be after {from}"))
        elif request.end - request.start > timedelta(days=MAX_DAYS):
            message = f"{{to}} must be at most {MAX_DAYS} days after {{from}}"
            errors.append(FieldError("to", "range_too_long", message))
    if request.time_zone not in _zone_names():
        message = "{time_zone} must be an IANA time zone name, such as Europe/Berlin"
        errors.append(FieldError("time_zone", "unknown_time_zone", message))
    if len(request.group_by) > MAX_DIMENSIONS:
        message = f"{{group_by}} takes at most {MAX_DIMENSIONS} dimensions"
        errors.append(FieldError("group_by", "too_many_dimensions", message))
    elif len(set(request.group_by)) != len(request.group_by):
        errors.append(FieldError("group_by", "repeated", "{group_by} names a dimension twice"))
    if not request.statuses:
        message = "{statuses} must name at least one status"
        errors.append(FieldError("statuses", "required", message))
    return errors


async def _none() -> dict[GroupKey, Any]:
    """No groups: what a statement that need not run would have found."""
    return {}


def _too_many_rows() -> InvalidReport:
    message = (
        f"the report would have more than {MAX_ROWS} rows: narrow it with a shorter range, "
        "fewer dimensions or a filter"
    )
    return InvalidReport([FieldError(None, "too_many_rows", message)])


async def run_report(
    access: Access, request: ReportRequest, wanted: Collection[Metric] = ()
) -> ReportOutcome:
    """The report `access` may see. `wanted` names the metrics to compute; none named
    computes them all, since rows exist for groups with a click or a conversion."""
    errors = request_errors(request)
    if errors:
        return InvalidReport(errors)
    wanted = set(wanted) or set(Metric)
    asked = request.filter
    scope = ReportScope(
        start=request.start,
        end=request.end,
        zone=ZoneInfo(request.time_zone),
        group_by=tuple(request.group_by),
        statuses=tuple(status.value for status in request.statuses),
        offer_id=asked.offer_id,
        partner_ids=(*access.report_partners(), *filter(None, [asked.partner_id])),
        tracking_link_id=asked.tracking_link_id,
        country=None if asked.country is None else asked.country.upper(),
    )
    # The two statements are independent: run side by side, the report takes the longer.
    clicks, sums = await asyncio.gather(
        report_sql.click_counts(scope, MAX_ROWS + 1) if wanted & _CLICK_METRICS else _none(),
        report_sql.conversion_sums(scope, MAX_ROWS + 1)
        if wanted & _CONVERSION_METRICS
        else _none(),
    )
    keys = clicks.keys() | sums.keys()
    if len(keys) > MAX_ROWS:
        return _too_many_rows()
    if not request.group_by and not keys:
        keys = {GroupKey()}
    rows = [
        ReportRow(key, Metrics.of(clicks.get(key, 0), sums.get(key)), scope.zone) for key in keys
    ]
    rows = await _ordered(access, rows)
    totals = sum((row.metrics for row in rows), Metrics())
    return Report(rows=rows, totals=totals)


async def _ordered(access: Access, rows: list[ReportRow]) -> list[ReportRow]:
    """By day, hour, offer name, partner name, tracking link creation and country; a
    missing value (a click without a link, or a country) after the others."""
    offer_ids = [row.key.offer_id for row in rows if row.key.offer_id is not None]
    partner_ids = [row.key.partner_id for row in rows if row.key.partner_id is not None]
    link_ids = [row.key.tracking_link_id for row in rows if row.key.tracking_link_id is not None]
    offer_names = {
        id_: offer.name for id_, offer in (await offers.READS.by_ids(access, offer_ids)).items()
    }
    partner_names = {
        id_: partner.name
        for id_, partner in (await partners.READS.by_ids(access, partner_ids)).items()
    }
    link_creations = {
        id_: link.created_at for id_, link in (await links.READS.by_ids(access, link_ids)).items()
    }

    def order(row: ReportRow) -> tuple[object, ...]:
        key = row.key
        # (missing?, value, id): a missing value sorts last, the id breaks ties of names.
        offer = offer_names.get(key.offer_id, "") if key.offer_id else ""
        partner = partner_names.get(key.partner_id, "") if key.partner_id else ""
        link = link_creations.get(key.tracking_link_id) if key.tracking_link_id else None
        return (
            (key.day is None, key.day or date.min),
            (key.hour is None, key.hour.timestamp() if key.hour else 0.0),
            (key.offer_id is None, offer, str(key.offer_id)),
            (key.partner_id is None, partner, str(key.partner_id)),
            (link is None, link.timestamp() if link else 0.0, str(key.tracking_link_id)),
            (key.country is None, key.country or ""),
        )

    return sorted(rows, key=order)
