"""Clicks in GraphQL: the type with its conversions and tracking link, its filter,
and createClick."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.clicks import queries, records
from models.clicks.records import ClickRecord
from models.clicks.service import NewClick, create_click
from models.conversions.records import ConversionRecord
from models.errors import InvalidInputError
from models.store.tables import MarketingType, Stage
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.loaders import PageKey
from schema.permissions import CanRead, CanWrite
from schema.relay import (
    After,
    Connection,
    First,
    conditions_of,
    decode_cursor,
    node,
    node_of,
    node_or_none,
    page_size,
)

if TYPE_CHECKING:
    from schema.conversions import Conversion
    from schema.tracking import TrackingLink

strawberry.enum(Stage, description="The furthest funnel step a click has reached; never back.")
strawberry.enum(MarketingType, description="The kind of traffic a click came from, as tagged.")


@strawberry.type(description="A partner's sub ids, as the tracking link received them.")
class SubIds(records.SubIds):
    pass


@node_of(ClickRecord)
@strawberry.type(description="A visit through a partner's tracking link.")
class Click(ClickRecord):
    tracking_link_id: uuid.UUID | None = strawberry.field(
        description="The tracking link the visit came through; null for createClick's clicks."
    )
    type: MarketingType | None = strawberry.field(description="The marketing type.")
    sub_ids: SubIds

    @strawberry.field(description="The tracking link the visit came through, with its offer.")
    async def tracking_link(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[TrackingLink, strawberry.lazy("schema.tracking")] | None:
        if self.tracking_link_id is None:
            return None
        return node_or_none(
            await info.context.loaders.tracking_link_by_id.load(self.tracking_link_id)
        )

    @strawberry.field(description="This click's conversions, newest first.")
    async def conversions(
        self,
        info: Info[GraphQLContext, None],
        first: First = None,
        after: After = None,
    ) -> Connection[Annotated[Conversion, strawberry.lazy("schema.conversions")]]:
        loaders = info.context.loaders
        key = PageKey(
            self.id,
            page_size(first, info.context.limits),
            decode_cursor(after, ConversionRecord.CURSOR_KIND),
        )
        page = await loaders.conversion_page_of_click.load(key)
        return Connection.of(page, lambda: loaders.conversion_count_of_click.load(self.id))


@strawberry.input(description="Clicks matching every given field.")
class ClickFilter(queries.ClickFilter):
    created_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_to: datetime | None = strawberry.field(default=None, description="Exclusive.")
    country: str | None = strawberry.field(
        default=None, description="ISO 3166-1 alpha-2, such as DE, in either case."
    )


@strawberry.input(description="A click created server-side; every field is optional.")
class CreateClickInput(NewClick):
    ip: str | None = strawberry.field(default=None, description="The player's IPv4 or IPv6.")
    country: str | None = strawberry.field(
        default=None, description="ISO 3166-1 alpha-2, such as DE."
    )
    tracking_link_id: uuid.UUID | None = strawberry.field(
        default=None, description="A tracking link the click belongs to, if any."
    )
    type: MarketingType | None = strawberry.field(default=None, description="The marketing type.")
    # Set by the tracking link from the request, never by a client.
    created_at: strawberry.Private[datetime | None] = None
    browser_family: strawberry.Private[str | None] = None
    os_family: strawberry.Private[str | None] = None
    device_family: strawberry.Private[str | None] = None


@strawberry.type
class ClickQuery:
    @strawberry.field(permission_classes=[CanRead], description="A click by its id.")
    async def click(self, info: Info[GraphQLContext, None], id: uuid.UUID) -> Click | None:
        return node_or_none(await info.context.loaders.click_by_id.load(id))

    @strawberry.field(permission_classes=[CanRead], description="Clicks, newest first.")
    async def clicks(
        self,
        info: Info[GraphQLContext, None],
        filter: ClickFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Click]:
        return await Connection.listing(
            queries.READS, conditions_of(filter), first, after, info.context
        )


@strawberry.type
class ClickMutation:
    @strawberry.mutation(permission_classes=[CanWrite], description="Create a click.")
    async def create_click(
        self, info: Info[GraphQLContext, None], input: CreateClickInput
    ) -> Click:
        try:
            click_id = await create_click(input, access=info.context.access)
        except InvalidInputError as invalid:
            raise bad_user_input("invalid click", invalid.errors) from invalid
        record = await info.context.loaders.click_by_id.load(click_id)
        assert record is not None
        return node(record)
