"""Offers and tracking links in GraphQL: create them, list them, follow a click to its link."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from strawberry import Info

from models import tracking
from models.tracking import (
    OFFER_CURSOR,
    TRACKING_LINK_CURSOR,
    InvalidTrackingInputError,
    OfferRecord,
    TrackingLinkRecord,
    offer_cursor,
    tracking_link_cursor,
)
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.permissions import CanAdminister, CanRead
from schema.types import After, First, PageInfo, decode_cursor, page_size

FIELD_NAMES = {
    "name": "name",
    "landing_url": "landingUrl",
    "offer_id": "offerId",
    "partner_reference": "partnerReference",
    "creative": "creative",
}


@strawberry.type(description="What partners promote: the operator's landing page.")
class Offer:
    id: uuid.UUID
    name: str
    landing_url: str = strawberry.field(
        description="Where tracking links send players; a {click_id} placeholder, if any, "
        "receives the click id, else it joins the query."
    )
    created_at: datetime

    @classmethod
    def from_record(cls, record: OfferRecord) -> Offer:
        return cls(
            id=record.id,
            name=record.name,
            landing_url=record.landing_url,
            created_at=record.created_at,
        )


@strawberry.type(description="A partner's link to an offer: GET /track/{id} makes a click.")
class TrackingLink:
    id: uuid.UUID
    partner_reference: str
    creative: str | None
    created_at: datetime
    offer_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_record(cls, record: TrackingLinkRecord) -> TrackingLink:
        return cls(
            id=record.id,
            partner_reference=record.partner_reference,
            creative=record.creative,
            created_at=record.created_at,
            offer_id=record.offer_id,
        )

    @strawberry.field(description="The offer this link promotes.")
    async def offer(self, info: Info[GraphQLContext, None]) -> Offer:
        record = await info.context.loaders.offer_by_id.load(self.offer_id)
        # A tracking link's offer cannot be deleted while the link exists.
        assert record is not None
        return Offer.from_record(record)


@strawberry.type
class OfferEdge:
    cursor: str
    node: Offer


@strawberry.type(description="A page of offers, newest first.")
class OfferConnection:
    edges: list[OfferEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many offers there are, on every page together.")
    async def total_count(self) -> int:
        return await self.count()


@strawberry.type
class TrackingLinkEdge:
    cursor: str
    node: TrackingLink


@strawberry.type(description="A page of tracking links, newest first.")
class TrackingLinkConnection:
    edges: list[TrackingLinkEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many tracking links match, on every page together.")
    async def total_count(self) -> int:
        return await self.count()


def _page_info(cursors: list[str], has_next_page: bool) -> PageInfo:
    return PageInfo(
        has_next_page=has_next_page,
        end_cursor=cursors[-1] if cursors else None,
        start_cursor=cursors[0] if cursors else None,
    )


@strawberry.input(description="A new offer.")
class CreateOfferInput:
    name: str
    landing_url: str = strawberry.field(
        description="An absolute http(s) URL, at most 2048 characters; may hold {click_id}."
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
        record = await info.context.loaders.offer_by_id.load(id)
        return None if record is None else Offer.from_record(record)

    @strawberry.field(permission_classes=[CanRead], description="Offers, newest first.")
    async def offers(
        self, info: Info[GraphQLContext, None], first: First = None, after: After = None
    ) -> OfferConnection:
        page = await tracking.offers_page(
            page_size(first, info.context.limits), decode_cursor(after, OFFER_CURSOR)
        )
        edges = [
            OfferEdge(
                cursor=offer_cursor(record).encode(OFFER_CURSOR), node=Offer.from_record(record)
            )
            for record in page.rows
        ]
        return OfferConnection(
            edges=edges,
            page_info=_page_info([edge.cursor for edge in edges], page.has_next_page),
            count=tracking.count_offers,
        )

    @strawberry.field(permission_classes=[CanRead], description="A tracking link by its id.")
    async def tracking_link(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> TrackingLink | None:
        record = await info.context.loaders.tracking_link_by_id.load(id)
        return None if record is None else TrackingLink.from_record(record)

    @strawberry.field(
        permission_classes=[CanRead], description="Tracking links, newest first; of one offer."
    )
    async def tracking_links(
        self,
        info: Info[GraphQLContext, None],
        offer_id: uuid.UUID | None = None,
        first: First = None,
        after: After = None,
    ) -> TrackingLinkConnection:
        page = await tracking.tracking_links_page(
            offer_id,
            page_size(first, info.context.limits),
            decode_cursor(after, TRACKING_LINK_CURSOR),
        )
        edges = [
            TrackingLinkEdge(
                cursor=tracking_link_cursor(record).encode(TRACKING_LINK_CURSOR),
                node=TrackingLink.from_record(record),
            )
            for record in page.rows
        ]
        return TrackingLinkConnection(
            edges=edges,
            page_info=_page_info([edge.cursor for edge in edges], page.has_next_page),
            count=lambda: tracking.count_tracking_links(offer_id),
        )


@strawberry.type
class TrackingMutation:
    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create an offer. Offers decide where players are sent: an admin key.",
    )
    async def create_offer(self, input: CreateOfferInput) -> Offer:
        try:
            record = await tracking.create_offer(input.name, input.landing_url)
        except InvalidTrackingInputError as invalid:
            raise bad_user_input("invalid offer", invalid.errors, FIELD_NAMES) from invalid
        return Offer.from_record(record)

    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create a tracking link to an offer, for a partner: an admin key.",
    )
    async def create_tracking_link(self, input: CreateTrackingLinkInput) -> TrackingLink:
        try:
            record = await tracking.create_tracking_link(
                input.offer_id, input.partner_reference, input.creative
            )
        except InvalidTrackingInputError as invalid:
            raise bad_user_input("invalid tracking link", invalid.errors, FIELD_NAMES) from invalid
        return TrackingLink.from_record(record)
