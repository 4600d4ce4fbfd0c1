"""Root queries: one click or conversion by id, or filtered cursor pages of them."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry import Info

from models import queries
from models.queries import CLICK_CURSOR, CONVERSION_CURSOR
from schema.context import GraphQLContext
from schema.permissions import CanRead
from schema.types import (
    After,
    Click,
    ClickConnection,
    Conversion,
    ConversionConnection,
    ConversionType,
    Currency,
    First,
    Stage,
    decode_cursor,
    page_size,
)


@strawberry.input(description="Conversions matching every given field.")
class ConversionFilter:
    click_id: uuid.UUID | None = None
    player_id: str | None = None
    transaction_id: str | None = None
    type: ConversionType | None = None
    currency: Currency | None = None
    occurred_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    occurred_to: datetime | None = strawberry.field(default=None, description="Exclusive.")

    def to_query(self) -> queries.ConversionFilter:
        return queries.ConversionFilter(
            click_id=self.click_id,
            player_id=self.player_id,
            transaction_id=self.transaction_id,
            type=self.type,
            currency=self.currency,
            occurred_from=self.occurred_from,
            occurred_to=self.occurred_to,
        )


@strawberry.input(description="Clicks matching every given field.")
class ClickFilter:
    player_id: str | None = None
    stage: Stage | None = None
    created_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_to: datetime | None = strawberry.field(default=None, description="Exclusive.")
    tracking_link_id: uuid.UUID | None = None
    country: str | None = strawberry.field(
        default=None, description="ISO 3166-1 alpha-2, such as DE, in either case."
    )
    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    s4: str | None = None
    s5: str | None = None

    def to_query(self) -> queries.ClickFilter:
        sub_ids = {"s1": self.s1, "s2": self.s2, "s3": self.s3, "s4": self.s4, "s5": self.s5}
        return queries.ClickFilter(
            player_id=self.player_id,
            stage=self.stage,
            created_from=self.created_from,
            created_to=self.created_to,
            tracking_link_id=self.tracking_link_id,
            country=self.country,
            sub_ids={name: value for name, value in sub_ids.items() if value is not None},
        )


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[CanRead], description="A click by its id.")
    async def click(self, info: Info[GraphQLContext, None], id: uuid.UUID) -> Click | None:
        record = await info.context.loaders.click_by_id.load(id)
        return None if record is None else Click.from_record(record)

    @strawberry.field(permission_classes=[CanRead], description="Clicks, newest first.")
    async def clicks(
        self,
        info: Info[GraphQLContext, None],
        filter: ClickFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> ClickConnection:
        click_filter = (filter or ClickFilter()).to_query()
        page = await queries.clicks_page(
            click_filter,
            page_size(first, info.context.limits),
            decode_cursor(after, CLICK_CURSOR),
        )
        return ClickConnection.from_page(page, lambda: queries.count_clicks(click_filter))

    @strawberry.field(permission_classes=[CanRead], description="A conversion by its id.")
    async def conversion(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> Conversion | None:
        record = await info.context.loaders.conversion_by_id.load(id)
        return None if record is None else Conversion.from_record(record)

    @strawberry.field(permission_classes=[CanRead], description="Conversions, newest first.")
    async def conversions(
        self,
        info: Info[GraphQLContext, None],
        filter: ConversionFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> ConversionConnection:
        conversion_filter = (filter or ConversionFilter()).to_query()
        page = await queries.conversions_page(
            conversion_filter,
            page_size(first, info.context.limits),
            decode_cursor(after, CONVERSION_CURSOR),
        )
        return ConversionConnection.from_page(
            page, lambda: queries.count_conversions(conversion_filter)
        )
