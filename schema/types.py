"""GraphQL object types: clicks, conversions and their cursor connections."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models import tables
from models.conversion_input import format_amount
from models.outcomes import ConversionRecord
from models.queries import (
    CLICK_CURSOR,
    CONVERSION_CURSOR,
    ClickRecord,
    Cursor,
    InvalidCursorError,
    Page,
    conversion_cursor,
)
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.limits import GraphQLLimits
from schema.loaders import ClickConversionsKey

if TYPE_CHECKING:
    from schema.tracking import TrackingLink

ConversionType = strawberry.enum(
    tables.ConversionType, description="A step of the funnel: install, registration, deposit."
)
Currency = strawberry.enum(tables.Currency, description="The currencies a deposit may carry.")
Stage = strawberry.enum(
    tables.Stage, description="The furthest funnel step a click has reached; never moves back."
)
Source = strawberry.enum(tables.Source, description="Which face recorded a conversion.")
MarketingType = strawberry.enum(
    tables.MarketingType, description="The kind of traffic a click came from, as tagged."
)

First = Annotated[
    int | None,
    strawberry.argument(description="Page size: 50 unless given, at most the configured cap."),
]
After = Annotated[
    str | None, strawberry.argument(description="The endCursor of the previous page.")
]


def page_size(first: int | None, limits: GraphQLLimits) -> int:
    if first is None:
        return min(limits.default_page_size, limits.max_page_size)
    if not 0 <= first <= limits.max_page_size:
        raise bad_user_input(f"first must be between 0 and {limits.max_page_size}")
    return first


def decode_cursor(after: str | None, kind: str) -> Cursor | None:
    if after is None:
        return None
    try:
        return Cursor.decode(after, kind)
    except InvalidCursorError as error:
        raise bad_user_input(str(error)) from error


@strawberry.type(description="Where a page ends. Pages run newest first.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    # Paging runs forwards only; Relay clients still expect these two fields.
    start_cursor: str | None
    has_previous_page: bool = strawberry.field(
        default=False, description="Always false: pages run forwards with `first` and `after`."
    )


@strawberry.type
class ConversionEdge:
    cursor: str
    node: Conversion


@strawberry.type(description="A page of conversions, newest first.")
class ConversionConnection:
    edges: list[ConversionEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many conversions match, on every page together.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def from_page(
        cls, page: Page[ConversionRecord], count: Callable[[], Awaitable[int]]
    ) -> ConversionConnection:
        edges = [
            ConversionEdge(
                cursor=conversion_cursor(record).encode(CONVERSION_CURSOR),
                node=Conversion.from_record(record),
            )
            for record in page.rows
        ]
        return cls(edges=edges, page_info=_page_info(edges, page.has_next_page), count=count)


@strawberry.type
class ClickEdge:
    cursor: str
    node: Click


@strawberry.type(description="A page of clicks, newest first.")
class ClickConnection:
    edges: list[ClickEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many clicks match, on every page together.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def from_page(
        cls, page: Page[ClickRecord], count: Callable[[], Awaitable[int]]
    ) -> ClickConnection:
        edges = [
            ClickEdge(cursor=record.cursor.encode(CLICK_CURSOR), node=Click.from_record(record))
            for record in page.rows
        ]
        return cls(edges=edges, page_info=_page_info(edges, page.has_next_page), count=count)


def _page_info(edges: list[ConversionEdge] | list[ClickEdge], has_next_page: bool) -> PageInfo:
    return PageInfo(
        has_next_page=has_next_page,
        end_cursor=edges[-1].cursor if edges else None,
        start_cursor=edges[0].cursor if edges else None,
    )


@strawberry.type(description="A partner's sub ids, as the tracking link received them.")
class SubIds:
    s1: str | None
    s2: str | None
    s3: str | None
    s4: str | None
    s5: str | None


@strawberry.type(description="A visit through a partner's tracking link.")
class Click:
    id: uuid.UUID
    created_at: datetime
    stage: Stage
    player_id: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    tracking_link_id: uuid.UUID | None = strawberry.field(
        description="The tracking link the visit came through; null for createClick's clicks."
    )
    type: MarketingType | None = strawberry.field(description="The marketing type.")
    sub_ids: SubIds
    browser_family: str | None
    os_family: str | None
    device_family: str | None

    @classmethod
    def from_record(cls, record: ClickRecord) -> Click:
        return cls(
            id=record.id,
            created_at=record.created_at,
            stage=record.stage,
            player_id=record.player_id,
            ip=record.ip,
            user_agent=record.user_agent,
            referrer=record.referrer,
            country=record.country,
            tracking_link_id=record.tracking_link_id,
            type=record.type,
            sub_ids=SubIds(**record.sub_ids),
            browser_family=record.browser_family,
            os_family=record.os_family,
            device_family=record.device_family,
        )

    @strawberry.field(description="The tracking link the visit came through, with its offer.")
    async def tracking_link(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[TrackingLink, strawberry.lazy("schema.tracking")] | None:
        from schema.tracking import TrackingLink  # schema.tracking builds on this module

        if self.tracking_link_id is None:
            return None
        record = await info.context.loaders.tracking_link_by_id.load(self.tracking_link_id)
        return None if record is None else TrackingLink.from_record(record)

    @strawberry.field(description="This click's conversions, newest first.")
    async def conversions(
        self,
        info: Info[GraphQLContext, None],
        first: First = None,
        after: After = None,
    ) -> ConversionConnection:
        loaders = info.context.loaders
        key = ClickConversionsKey(
            self.id, page_size(first, info.context.limits), decode_cursor(after, CONVERSION_CURSOR)
        )
        page = await loaders.conversion_page_of_click.load(key)
        return ConversionConnection.from_page(
            page, lambda: loaders.conversion_count_of_click.load(self.id)
        )


def _amount(amount_minor: int | None) -> Decimal | None:
    # Through the decimal string, so 4000 minor units read "40.00", not "40".
    return None if amount_minor is None else Decimal(format_amount(amount_minor))


@strawberry.type(description="One reported funnel event.")
class Conversion:
    id: uuid.UUID
    type: ConversionType
    occurred_at: datetime
    received_at: datetime
    player_id: str | None
    transaction_id: str | None
    currency: Currency | None
    amount: Decimal | None = strawberry.field(
        description='Exact, from the stored minor units: a string such as "40.00".'
    )
    is_first_deposit: bool
    source: Source
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    browser_family: str | None
    os_family: str | None
    device_family: str | None
    click_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_record(cls, record: ConversionRecord) -> Conversion:
        return cls(
            id=record.id,
            type=record.type,
            occurred_at=record.occurred_at,
            received_at=record.received_at,
            player_id=record.player_id,
            transaction_id=record.transaction_id,
            currency=record.currency,
            amount=None
            if record.amount_minor is None
            else Decimal(format_amount(record.amount_minor)),
            is_first_deposit=record.is_first_deposit,
            source=record.source,
            ip=record.ip,
            user_agent=record.user_agent,
            referrer=record.referrer,
            country=record.country,
            browser_family=record.browser_family,
            os_family=record.os_family,
            device_family=record.device_family,
            click_id=record.click_id,
        )

    @strawberry.field(description="The click this conversion was reported against.")
    async def click(self, info: Info[GraphQLContext, None]) -> Click:
        record = await info.context.loaders.click_by_id.load(self.click_id)
        # Conversions reference clicks with ON DELETE RESTRICT: the click exists.
        assert record is not None
        return Click.from_record(record)
