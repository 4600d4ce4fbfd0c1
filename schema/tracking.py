"""Offers and tracking links in GraphQL: create them, list them, follow a click to its link."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.errors import FieldError, InvalidInputError
from models.partners.partners import PartnerRecord
from models.store.tables import FirePolicy
from models.tracking import links, offers
from models.tracking.links import TrackingLinkRecord
from models.tracking.offers import OfferRecord
from schema.context import GraphQLContext
from schema.errors import bad_user_input
from schema.permissions import CanAdminister, CanRead
from schema.relay import After, Connection, First, node, node_of, node_or_none

if TYPE_CHECKING:
    from schema.partners import Partner

strawberry.enum(
    FirePolicy,
    description="Which pixel fires of an offer must be signed: OPEN (none), SIGNED_DEPOSITS "
    "(deposits), SIGNED (every type). See docs/security.md.",
)


@node_of(OfferRecord)
@strawberry.type(description="What partners promote: the operator's landing page.")
class Offer(OfferRecord):
    landing_url: str = strawberry.field(
        description="Where tracking links send players; a {click_id} placeholder, if any, "
        "receives the click id, else it joins the query."
    )
    fire_policy: FirePolicy = strawberry.field(
        description="Which of its pixel fires must carry a sig made with its fire secret."
    )
    hold_deposits: bool = strawberry.field(
        description="Its deposits are recorded PENDING, to be approved or rejected with "
        "setConversionStatus; read when each deposit arrives. See docs/lifecycle.md."
    )


@node_of(TrackingLinkRecord)
@strawberry.type(description="A partner's link to an offer: GET /track/{id} makes a click.")
class TrackingLink(TrackingLinkRecord):
    offer_id: strawberry.Private[uuid.UUID]
    partner_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The offer this link promotes.")
    async def offer(self, info: Info[GraphQLContext, None]) -> Offer:
        record = await info.context.loaders.offer_by_id.load(self.offer_id)
        # A tracking link's offer cannot be deleted while the link exists, and whoever
        # sees the link sees its offer.
        assert record is not None
        return node(record)

    async def _partner(self, info: Info[GraphQLContext, None]) -> PartnerRecord:
        record = await info.context.loaders.partner_by_id.load(self.partner_id)
        # Partners cannot be deleted, and whoever sees a link sees its partner.
        assert record is not None
        return record

    @strawberry.field(description="The partner that publishes this link.")
    async def partner(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Partner, strawberry.lazy("schema.partners")]:
        return node(await self._partner(info))

    @strawberry.field(
        description="The partner's name: the partners migration made each distinct "
        "reference a partner of that name.",
        deprecation_reason="Use partner { id name }: links belong to a Partner now.",
    )
    async def partner_reference(self, info: Info[GraphQLContext, None]) -> str:
        return (await self._partner(info)).name


@strawberry.input(description="A new offer.")
class CreateOfferInput:
    name: str
    landing_url: str = strawberry.field(
        description="An absolute http(s) URL, at most 2048 characters; may hold {click_id}. "
        "Stored in ASCII: a non-ASCII host in IDNA, other non-ASCII characters percent-encoded."
    )
    fire_policy: FirePolicy = strawberry.field(
        default=FirePolicy.OPEN, description="OPEN unless given."
    )
    hold_deposits: bool = strawberry.field(
        default=False, description="Record its deposits PENDING; false unless given."
    )


@strawberry.input(description="The fields of an offer to change; the others stay as they are.")
class UpdateOfferInput:
    name: str | None = None
    landing_url: str | None = None
    fire_policy: FirePolicy | None = strawberry.field(
        default=None, description="Takes effect with the next fires, on every worker."
    )
    hold_deposits: bool | None = strawberry.field(
        default=None, description="Applies to the deposits that arrive after the change."
    )


@strawberry.type(description="A new fire secret: shown this once, never readable again.")
class FireSecret:
    secret: str = strawberry.field(
        description="Sign fires with it: the hex HMAC-SHA256 of the canonical string. "
        "The secret it replaced stays valid for 24 hours."
    )


@strawberry.input(description="A new tracking link to an existing offer, for a partner.")
class CreateTrackingLinkInput:
    offer_id: uuid.UUID
    partner_id: uuid.UUID = strawberry.field(description="The partner that publishes the link.")
    creative: str | None = strawberry.field(
        default=None, description="The banner, mail or post it appears in."
    )


def _offer_not_found(field: str) -> FieldError:
    return FieldError(field, "not_found", f"no offer has this {{{field}}}")


@strawberry.type
class TrackingQuery:
    @strawberry.field(permission_classes=[CanRead], description="An offer by its id.")
    async def offer(self, info: Info[GraphQLContext, None], id: uuid.UUID) -> Offer | None:
        return node_or_none(await info.context.loaders.offer_by_id.load(id))

    @strawberry.field(permission_classes=[CanRead], description="Offers, newest first.")
    async def offers(
        self, info: Info[GraphQLContext, None], first: First = None, after: After = None
    ) -> Connection[Offer]:
        return await Connection.listing(offers.READS, (), first, after, info.context)

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
            links.READS, links.conditions(offer_id), first, after, info.context
        )


@strawberry.type
class TrackingMutation:
    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create an offer. Offers decide where players are sent: an admin key.",
    )
    async def create_offer(self, input: CreateOfferInput) -> Offer:
        try:
            record = await offers.create_offer(
                input.name,
                input.landing_url,
                input.fire_policy,
                hold_deposits=input.hold_deposits,
            )
        except InvalidInputError as invalid:
            raise bad_user_input("invalid offer", invalid.errors) from invalid
        return node(record)

    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Change an offer's name, landing URL, fire policy or holdDeposits: an "
        "admin key.",
    )
    async def update_offer(self, id: uuid.UUID, input: UpdateOfferInput) -> Offer:
        changes = offers.OfferChanges(
            name=input.name,
            landing_url=input.landing_url,
            fire_policy=input.fire_policy,
            hold_deposits=input.hold_deposits,
        )
        try:
            record = await offers.update_offer(id, changes)
        except InvalidInputError as invalid:
            raise bad_user_input("invalid offer", invalid.errors) from invalid
        if record is None:
            raise bad_user_input("no such offer", [_offer_not_found("id")])
        return node(record)

    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Give an offer a new fire secret, returned once; the one it replaces "
        "stays valid for 24 hours: an admin key.",
    )
    async def rotate_fire_secret(self, offer_id: uuid.UUID) -> FireSecret:
        secret = await offers.rotate_fire_secret(offer_id)
        if secret is None:
            raise bad_user_input("no such offer", [_offer_not_found("offer_id")])
        return FireSecret(secret=secret)

    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Create a tracking link to an offer, for a partner: an admin key.",
    )
    async def create_tracking_link(self, input: CreateTrackingLinkInput) -> TrackingLink:
        try:
            record = await links.create_tracking_link(
                input.offer_id, input.partner_id, input.creative
            )
        except InvalidInputError as invalid:
            raise bad_user_input("invalid tracking link", invalid.errors) from invalid
        return node(record)
