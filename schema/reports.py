"""The report in GraphQL: `report(input: ...)`, for dashboards. The service
(models/reports/report.py) counts; this face reads which metrics are selected, so that
nothing unselected is computed, and loads offers, partners and links through the
request's DataLoaders (a partner's key loads only its own)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case

from models.conversions.input import format_amount
from models.reports import report
from models.reports.report import DEFAULT_STATUSES, Metric, Metrics, ReportDimension
from models.store.tables import ConversionStatus, Currency
from schema.context import GraphQLContext
from schema.errors import bad_user_input, graphql_naming
from schema.permissions import CanRead
from schema.relay import node_or_none

if TYPE_CHECKING:
    from schema.partners import Partner
    from schema.tracking import Offer, TrackingLink

strawberry.enum(ReportDimension, description="What a report's rows are grouped by.")


@strawberry.type(description="The deposits of one currency that carried an amount.")
class DepositTotal:
    currency: Currency
    amount: Decimal = strawberry.field(description="Their exact sum.")


@strawberry.type(
    description="Clicks counted at their creation, conversions at occurredAt (of the "
    "statuses asked); rates are per click, as fractions, null without clicks."
)
class ReportMetrics:
    metrics: strawberry.Private[Metrics]

    @strawberry.field
    def clicks(self) -> int:
        return self.metrics.clicks

    @strawberry.field
    def installs(self) -> int:
        return self.metrics.installs

    @strawberry.field
    def registrations(self) -> int:
        return self.metrics.registrations

    @strawberry.field
    def deposits(self) -> int:
        return self.metrics.deposits

    @strawberry.field(description="Deposits that were their click's first.")
    def first_deposits(self) -> int:
        return self.metrics.first_deposits

    @strawberry.field(description="Per currency, in the order EUR, USD, GBP.")
    def deposit_totals(self) -> list[DepositTotal]:
        totals = self.metrics.deposit_totals
        return [
            DepositTotal(currency=currency, amount=Decimal(format_amount(totals[currency])))
            for currency in Currency
            if currency in totals
        ]

    @strawberry.field(description="Registrations per click: 0.25, not 25.")
    def registration_rate(self) -> float | None:
        return self.metrics.registration_rate

    @strawberry.field(description="First deposits per click.")
    def first_deposit_rate(self) -> float | None:
        return self.metrics.first_deposit_rate


@strawberry.type(description="One group; only the dimensions grouped by are set.")
class ReportRow:
    row: strawberry.Private[report.ReportRow]

    @strawberry.field(description="The local day, in the report's time zone.")
    def day(self) -> date | None:
        return self.row.key.day

    @strawberry.field(description="The local start of the hour, with its offset.")
    def hour(self) -> datetime | None:
        return self.row.local_hour

    @strawberry.field(description="The offer of the clicks' tracking link.")
    async def offer(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Offer, strawberry.lazy("schema.tracking")] | None:
        offer_id = self.row.key.offer_id
        if offer_id is None:
            return None
        return node_or_none(await info.context.loaders.offer_by_id.load(offer_id))

    @strawberry.field(description="The partner of the clicks' tracking link.")
    async def partner(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Partner, strawberry.lazy("schema.partners")] | None:
        partner_id = self.row.key.partner_id
        if partner_id is None:
            return None
        return node_or_none(await info.context.loaders.partner_by_id.load(partner_id))

    @strawberry.field(description="The clicks' tracking link.")
    async def tracking_link(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[TrackingLink, strawberry.lazy("schema.tracking")] | None:
        link_id = self.row.key.tracking_link_id
        if link_id is None:
            return None
        return node_or_none(await info.context.loaders.tracking_link_by_id.load(link_id))

    @strawberry.field(description="The click's country.")
    def country(self) -> str | None:
        return self.row.key.country

    @strawberry.field
    def metrics(self) -> ReportMetrics:
        return ReportMetrics(metrics=self.row.metrics)


@strawberry.type
class Report:
    rows: list[ReportRow]
    totals: ReportMetrics


@strawberry.input(description="Every given field narrows the report.")
class ReportFilter:
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = strawberry.field(default=None, description="The click's, as US.")


@strawberry.input
class ReportInput:
    start: datetime = strawberry.field(name="from", description="The first instant counted.")
    end: datetime = strawberry.field(
        name="to", description="The instant after the last counted: at most 366 days on."
    )
    time_zone: str = strawberry.field(
        default="UTC", description="An IANA name; where days and hours start."
    )
    group_by: list[ReportDimension] = strawberry.field(
        default_factory=list, description="0 to 3 dimensions."
    )
    filter: ReportFilter | None = None
    statuses: list[ConversionStatus] = strawberry.field(
        default_factory=lambda: list(DEFAULT_STATUSES),
        description="The statuses of the conversions counted; clicks are never filtered.",
    )

    def request(self) -> report.ReportRequest:
        asked = self.filter or ReportFilter()
        return report.ReportRequest(
            start=self.start,
            end=self.end,
            time_zone=self.time_zone,
            group_by=self.group_by,
            filter=report.ReportFilter(
                offer_id=asked.offer_id,
                partner_id=asked.partner_id,
                tracking_link_id=asked.tracking_link_id,
                country=asked.country,
            ),
            statuses=self.statuses,
        )


_METRICS_BY_FIELD = {to_camel_case(m.value): m for m in Metric}


def _selected_metrics(selections: list[Selection], within_metrics: bool = False) -> set[Metric]:
    """The metrics selected anywhere in a report's selection (rows' and totals'), through
    fragments too."""
    found: set[Metric] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            if within_metrics and selection.name in _METRICS_BY_FIELD:
                found.add(_METRICS_BY_FIELD[selection.name])
            metrics_type = selection.name in {"metrics", "totals"}
            found |= _selected_metrics(selection.selections, within_metrics or metrics_type)
        elif isinstance(selection, FragmentSpread | InlineFragment):
            found |= _selected_metrics(selection.selections, within_metrics)
    return found


@strawberry.type
class ReportQuery:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Clicks and conversions counted by day, hour, offer, partner, tracking "
        "link and country; at most 10,000 rows. See docs/dashboards.md.",
    )
    async def report(self, info: Info[GraphQLContext, None], input: ReportInput) -> Report:
        wanted = _selected_metrics(info.selected_fields)
        outcome = await report.run_report(info.context.access, input.request(), wanted)
        match outcome:
            case report.Report(rows=rows, totals=totals):
                return Report(
                    rows=[ReportRow(row=row) for row in rows],
                    totals=ReportMetrics(metrics=totals),
                )
            case report.InvalidReport(errors=errors):
                naming = graphql_naming()
                raise bad_user_input("; ".join(e.named(naming).message for e in errors), errors)
