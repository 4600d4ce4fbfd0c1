"""Rejected fires in GraphQL: why an integration's pixel fires were refused. A partner's
key sees the fires on its own clicks (models/partners/access.py decides)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.errors import FieldError
from models.rejections import queries
from models.rejections.records import FireRejectionRecord
from schema.context import GraphQLContext
from schema.errors import FieldErrorType
from schema.permissions import CanRead
from schema.relay import After, Connection, First, conditions_of, node_of, node_or_none

if TYPE_CHECKING:
    from schema.partners import Partner
    from schema.tracking import Offer


@node_of(FireRejectionRecord)
@strawberry.type(
    description="A pixel fire answered 401, 404, 409 or 422, kept "
    "FIRE_REJECTION_RETENTION_DAYS (7) days, never with its sig. See docs/lifecycle.md."
)
class FireRejection(FireRejectionRecord):
    # Shown through `shown_errors`, as GraphQL's FieldError type.
    errors: strawberry.Private[list[FieldError]]
    offer_id: strawberry.Private[uuid.UUID | None]
    partner_id: strawberry.Private[uuid.UUID | None]
    at: datetime = strawberry.field(description="When the fire was answered.")
    status: int = strawberry.field(
        description="The HTTP status it was answered: 401, 404, 409 or 422."
    )
    click_id: uuid.UUID | None = strawberry.field(
        description="The click id of the fire's path; null when it was not a UUID."
    )
    query: str | None = strawberry.field(
        description="The fire's parameters as received (a POST's form body after its query "
        "string), without sig, percent-encoded, at most 1 KiB."
    )
    ip: str | None = strawberry.field(description="The client's address, as a conversion's.")

    @strawberry.field(
        name="errors", description="The answer's errors, fields named as the pixel's parameters."
    )
    def shown_errors(self) -> list[FieldErrorType]:
        return [
            FieldErrorType(field=error.field, code=error.code, message=error.message)
            for error in self.errors
        ]

    @strawberry.field(description="The offer of the click's tracking link, when known.")
    async def offer(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Offer, strawberry.lazy("schema.tracking")] | None:
        if self.offer_id is None:
            return None
        return node_or_none(await info.context.loaders.offer_by_id.load(self.offer_id))

    @strawberry.field(description="The partner of the click's tracking link, when known.")
    async def partner(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Partner, strawberry.lazy("schema.partners")] | None:
        if self.partner_id is None:
            return None
        return node_or_none(await info.context.loaders.partner_by_id.load(self.partner_id))


@strawberry.input(description="Which rejected fires to list; every given field narrows it.")
class FireRejectionFilter:
    click_id: uuid.UUID | None = None
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    at_from: datetime | None = strawberry.field(
        default=None, name="from", description="Answered at or after this instant."
    )
    at_to: datetime | None = strawberry.field(
        default=None, name="to", description="Answered before this instant."
    )

    def conditions(self) -> list[object]:
        return queries.FireRejectionFilter(
            click_id=self.click_id,
            offer_id=self.offer_id,
            partner_id=self.partner_id,
            at_from=self.at_from,
            at_to=self.at_to,
        ).conditions()


@strawberry.type
class RejectionQuery:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Rejected pixel fires, newest first; a partner's key sees the fires on "
        "its own clicks.",
    )
    async def fire_rejections(
        self,
        info: Info[GraphQLContext, None],
        filter: FireRejectionFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[FireRejection]:
        return await Connection.listing(
            queries.READS, conditions_of(filter), first, after, info.context
        )
