"""Conversion statuses in GraphQL: setConversionStatus with typed results per id, and
the StatusChange entries of Conversion.statusHistory (models/conversions/status.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import Info

from models.conversions import status as statuses
from models.conversions.status import StatusChangeRecord
from models.errors import InvalidInputError
from models.store.tables import ConversionStatus
from schema.context import GraphQLContext
from schema.conversions import Conversion
from schema.errors import bad_user_input
from schema.permissions import CanAdminister
from schema.relay import node, node_of


@node_of(StatusChangeRecord)
@strawberry.type(description="One change of a conversion's status (statusHistory).")
class StatusChange(StatusChangeRecord):
    id: strawberry.Private[uuid.UUID]
    conversion_id: strawberry.Private[uuid.UUID]
    from_status: ConversionStatus = strawberry.field(name="from")
    to_status: ConversionStatus = strawberry.field(name="to")
    reason: str | None = strawberry.field(description="As given to setConversionStatus.")
    changed_by: str = strawberry.field(description="The name of the API key that changed it.")


@strawberry.type(
    description="The conversion is in the asked status: moved there, or already there "
    "(then no new statusHistory entry)."
)
class StatusChanged:
    conversion: Conversion


@strawberry.type(description="No conversion has this id.")
class ConversionNotFound:
    id: uuid.UUID


@strawberry.type(
    description="The conversion's status cannot move to the asked one: PENDING → APPROVED "
    "or REJECTED, APPROVED → REJECTED or REVERSED, REJECTED → APPROVED; REVERSED is final. "
    "Nothing was changed."
)
class TransitionNotAllowed:
    conversion: Conversion
    from_: ConversionStatus = strawberry.field(name="from", description="Its status now.")
    to: ConversionStatus = strawberry.field(description="The status asked for.")


StatusChangeResult = Annotated[
    StatusChanged | ConversionNotFound | TransitionNotAllowed,
    strawberry.union("StatusChangeResult"),
]


@strawberry.input(description="Conversions to move to one status, and why.")
class SetConversionStatusInput:
    ids: list[uuid.UUID] = strawberry.field(
        description=f"At most {statuses.MAX_IDS}; a result for each, in order."
    )
    status: ConversionStatus
    reason: str | None = strawberry.field(
        default=None,
        description=f"Kept in statusHistory; at most {statuses.MAX_REASON_LENGTH} characters.",
    )


def _result(outcome: statuses.StatusOutcome) -> StatusChangeResult:
    match outcome:
        case statuses.StatusChanged(conversion=record):
            return StatusChanged(conversion=node(record))
        case statuses.ConversionNotFound(id=conversion_id):
            return ConversionNotFound(id=conversion_id)
        case statuses.TransitionNotAllowed(
            conversion=record, from_status=from_status, to_status=to_status
        ):
            return TransitionNotAllowed(conversion=node(record), from_=from_status, to=to_status)


@strawberry.type
class ConversionStatusMutation:
    @strawberry.mutation(
        permission_classes=[CanAdminister],
        description="Approve, reject or reverse conversions: one result per id, in order. "
        "Each change is kept in statusHistory and queues the matching postback event "
        "(APPROVED, REJECTED, REVERSED) in the same transaction: an admin key. "
        "See docs/lifecycle.md.",
    )
    async def set_conversion_status(
        self, info: Info[GraphQLContext, None], input: SetConversionStatusInput
    ) -> list[StatusChangeResult]:
        # Admin keys only, and every key has a name.
        assert info.context.api_key_name is not None
        try:
            outcomes = await statuses.set_conversion_status(
                input.ids, input.status, input.reason, changed_by=info.context.api_key_name
            )
        except InvalidInputError as invalid:
            raise bad_user_input("invalid status change", invalid.errors) from invalid
        return [_result(outcome) for outcome in outcomes]
