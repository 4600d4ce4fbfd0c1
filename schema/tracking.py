"""Offers and tracking links in GraphQL: create them, list them, follow a click to its link."""

from __future__ import annotations

import uuid

import strawberry
from strawberry import Info

from models.errors import InvalidInputError
from models.tracking import links, offers
from models.tracking.links import TrackingLinkRecord
from models.tracking.offers import OfferRecord
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.permissions import CanAdminister, CanRead
from schema.relay import After, Connection, First, node, node_of, node_or_none


@node_of(OfferRecord)
@strawberry.type(description="What partners promote: the operator's landing page.")
class Offer(OfferRecord):
    landing_url: str = strawberry.field(
        description="Where tracking links send players; a {click_id} placeholder, if any, "
        "receives the click id, else it joins the query."
    )


@node_of(TrackingLinkRecord)
@strawberry.type(description="A partner's link to an offer: GET /track/{id} makes a click.")
class TrackingLink(TrackingLinkRecord):
    offer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The offer this link promotes.")
    async def offer(self, info: Info[GraphQLContext, None]) -> Offer:
        record = await info.context.loaders.offer_by_id.load(self.offer_id)
        # A tracking link's offer cannot be deleted while the link exists.
        assert record is not None
        return node(record)


@strawberry.input(description="A new offer.")
class CreateOfferInput:
    name: str
    landing_url: str = strawberry.field(
        description="An absolute http(s) URL, at most 2048 characters; may hold {click_id}. "
        "Stored in ASCII: a non-ASCII host in IDNA, other non-ASCII characters percent-encoded."
    )


@strawberry.input(description="A new tracking link to an existing offer.")
class CreateTrackingLinkInput:
    offer_id: uuid.UUID
    partner_reference: str = strawberry.field(description="Which partner publishes the link.")
    creative: str | None = strawberry.field(
        default=None, description="The banner, mail or post it appears in."
    )


@strawberry.type
class TrackingQuery:
    @strawberry.field(permission_classes=[CanRead], description="An offer by its id.")
    async def offer(self, info: Info[GraphQLContext, None], id: uuid.UUID) -> Offer | None:
        return node_or_none(await info.context.loaders.offer_by_id.load(id))

    @strawberry.field(permission_classes=[CanRead], description="Offers, newest first.")
    async def offers(
        self, info: Info[GraphQLContext, None], first: First = None, after: After = None
    ) -> Connection[Offer]:
        return await Connection.listing(offers.READS, (), first, after, info.context.limits)

    @strawberry.field(permission_classes=[CanRead], description="A tracking link by its id.")
    async def tracking_link(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> TrackingLink | None:
        return node_or_none(await info.context.loaders.tracking_link_by_id.load(id))

    @strawberry.field(
        permission_classes=[CanRead], description="Tracking links, newest first; of one offer."
    )
    async def tracking_links(
        self,
        info: Info[GraphQLContext, None],
        offer_id: uuid.UUID | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[TrackingLink]:
        return await Connection.listing(
            links.READS, links.conditions(offer_id), first, after, info.context.limits
        )


@strawberry.type
class TrackingMutation:
    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create an offer. Offers decide where players are sent: an admin key.",
    )
    async def create_offer(self, input: CreateOfferInput) -> Offer:
        try:
            record = await offers.create_offer(input.name, input.landing_url)
        except InvalidInputError as invalid:
            raise bad_user_input("invalid offer", invalid.errors) from invalid
        return node(record)

    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create a tracking link to an offer, for a partner: an admin key.",
    )
    async def create_tracking_link(self, input: CreateTrackingLinkInput) -> TrackingLink:
        try:
            record = await links.create_tracking_link(
                input.offer_id, input.partner_reference, input.creative
            )
        except InvalidInputError as invalid:
            raise bad_user_input("invalid tracking link", invalid.errors) from invalid
        return node(record)
