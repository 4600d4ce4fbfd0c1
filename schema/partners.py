"""Partners in GraphQL: the type with its tracking links, the queries, createPartner."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.errors import InvalidInputError
from models.partners import partners
from models.partners.partners import PartnerRecord
from models.tracking.links import TrackingLinkRecord
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.loaders import PageKey
from schema.permissions import CanAdminister, CanRead
from schema.relay import (
    After,
    Connection,
    First,
    decode_cursor,
    node,
    node_of,
    node_or_none,
    page_size,
)

if TYPE_CHECKING:
    from schema.postbacks import PostbackRule
    from schema.tracking import TrackingLink


@node_of(PartnerRecord)
@strawberry.type(
    description="An affiliate that publishes tracking links. A key bound to a partner "
    "sees only that partner's links, their clicks and those clicks' conversions."
)
class Partner(PartnerRecord):
    @strawberry.field(description="The partner's tracking links, newest first.")
    async def tracking_links(
        self, info: Info[GraphQLContext, None], first: First = None, after: After = None
    ) -> Connection[Annotated[TrackingLink, strawberry.lazy("schema.tracking")]]:
        loaders = info.context.loaders
        key = PageKey(
            self.id,
            page_size(first, info.context.limits),
            decode_cursor(after, TrackingLinkRecord.CURSOR_KIND),
        )
        page = await loaders.tracking_link_page_of_partner.load(key)
        return Connection.of(page, lambda: loaders.tracking_link_count_of_partner.load(self.id))

    @strawberry.field(description="The partner's postback rules, newest first.")
    async def postback_rules(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[PostbackRule, strawberry.lazy("schema.postbacks")]]:
        records = await info.context.loaders.postback_rules_of_partner.load(self.id)
        return [node(record) for record in records]


@strawberry.input(description="A new partner.")
class CreatePartnerInput:
    name: str = strawberry.field(description="At most 255 characters.")


@strawberry.type
class PartnerQuery:
    @strawberry.field(
        permission_classes=[CanRead],
        description="A partner by its id; a partner's key sees only its own.",
    )
    async def partner(self, info: Info[GraphQLContext, None], id: uuid.UUID) -> Partner | None:
        return node_or_none(await info.context.loaders.partner_by_id.load(id))

    @strawberry.field(
        permission_classes=[CanRead],
        description="Partners, newest first; a partner's key sees only its own.",
    )
    async def partners(
        self, info: Info[GraphQLContext, None], first: First = None, after: After = None
    ) -> Connection[Partner]:
        return await Connection.listing(partners.READS, (), first, after, info.context)


@strawberry.type
class PartnerMutation:
    @strawberry.mutation(permission_classes=[CanAdminister], description="Create a partner.")
    async def create_partner(self, input: CreatePartnerInput) -> Partner:
        try:
            record = await partners.create_partner(input.name)
        except InvalidInputError as invalid:
            raise bad_user_input("invalid partner", invalid.errors) from invalid
        return node(record)
