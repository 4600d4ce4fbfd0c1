"""Conversions in GraphQL: the type, its filter, and recordConversion through the
pixel's own service, with typed results."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from models.conversions import outcomes, queries
from models.conversions.bulk import MAX_BULK_REPORTS, record_conversions
from models.conversions.input import RawConversion, format_amount
from models.conversions.records import ConversionRecord
from models.conversions.service import record_conversion
from models.errors import InvalidInputError, StoreUnavailable
from models.store.tables import ConversionStatus, ConversionType, Currency, Source
from schema.context import GraphQLContext
from schema.errors import FieldErrorType, bad_user_input, store_unavailable
from schema.permissions import CanRead, CanWrite
from schema.relay import After, Connection, First, conditions_of, node, node_of, node_or_none
from schema.scalars import written

if TYPE_CHECKING:
    from schema.clicks import Click
    from schema.conversion_status import StatusChange

strawberry.enum(ConversionType, description="A step of the funnel: install, registration, deposit.")
strawberry.enum(Currency, description="The currencies a deposit may carry.")
strawberry.enum(Source, description="Which face recorded a conversion.")
strawberry.enum(
    ConversionStatus,
    description="Where a conversion stands: APPROVED, PENDING (a held deposit), REJECTED "
    "or REVERSED (a chargeback). See docs/lifecycle.md.",
)

# The one input field named otherwise than the service's (and the pixel's) `time`.
RECORD_RENAMES = {"time": "occurredAt"}


@node_of(ConversionRecord)
@strawberry.type(description="One reported funnel event.")
class Conversion(ConversionRecord):
    click_id: strawberry.Private[uuid.UUID]
    amount_minor: strawberry.Private[int | None]

    @strawberry.field(description='Exact, from the stored minor units: a string such as "40.00".')
    def amount(self) -> Decimal | None:
        # Through the decimal string, so 4000 minor units read "40.00", not "40".
        return None if self.amount_minor is None else Decimal(format_amount(self.amount_minor))

    status: ConversionStatus = strawberry.field(
        description="APPROVED when recorded, or PENDING for a deposit on an offer with "
        "holdDeposits; changed by setConversionStatus."
    )

    @strawberry.field(
        description="Every change of its status, oldest first; recording it is not one."
    )
    async def status_history(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[StatusChange, strawberry.lazy("schema.conversion_status")]]:
        records = await info.context.loaders.status_history_of_conversion.load(self.id)
        return [node(record) for record in records]

    @strawberry.field(description="The click this conversion was reported against.")
    async def click(
        self, info: Info[GraphQLContext, None]
    ) -> Annotated[Click, strawberry.lazy("schema.clicks")]:
        record = await info.context.loaders.click_by_id.load(self.click_id)
        # Conversions reference clicks with ON DELETE RESTRICT: the click exists.
        assert record is not None
        return node(record)


@strawberry.input(description="Conversions matching every given field.")
class ConversionFilter(queries.ConversionFilter):
    occurred_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    occurred_to: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.input(description="A conversion report, checked by the same rules as the pixel.")
class RecordConversionInput:
    click_id: uuid.UUID
    type: ConversionType
    player_id: str | None = None
    transaction_id: str | None = strawberry.field(
        default=None,
        description="The operator's id for the event; makes retried deposits safe.",
    )
    currency: Currency | None = strawberry.field(
        default=None, description="Deposits only, together with amount."
    )
    amount: Decimal | None = strawberry.field(
        default=None,
        description='Deposits only, together with currency: such as "40.00", more than 0, '
        "at most 1000000000, at most 2 decimal places (never rounded).",
    )
    occurred_at: datetime | None = strawberry.field(
        default=None,
        description="When it happened, with Z or an offset (default: when received).",
    )
    test: bool = strawberry.field(
        default=False,
        description="Validate and process fully, answer as usual, store nothing.",
    )

    def to_raw(self) -> RawConversion:
        # The service takes what a reporter sent as strings, so one set of rules applies.
        return RawConversion(
            click_id=str(self.click_id),
            type=self.type.value,
            test="true" if self.test else "false",
            player_id=self.player_id,
            transaction_id=self.transaction_id,
            currency=self.currency.value if self.currency else None,
            amount=None if self.amount is None else written(self.amount),
            time=self.occurred_at.isoformat() if self.occurred_at else None,
        )


@strawberry.type(description="Stored (or, with test: true, would have been).")
class ConversionRecorded:
    conversion: Conversion
    test: bool = strawberry.field(description="True when nothing was stored.")


@strawberry.type(description="An exact repeat of a stored conversion; nothing new was stored.")
class DuplicateConversion:
    conversion: Conversion = strawberry.field(description="The conversion stored earlier.")


@strawberry.type(
    description="A deposit reused a transactionId of its click with another amount or "
    "currency; nothing was changed."
)
class ConversionConflict:
    message: str
    conversion: Conversion = strawberry.field(
        description="The deposit stored earlier with this transactionId."
    )


@strawberry.type(description="No click has this id.")
class ClickNotFound:
    click_id: uuid.UUID


@strawberry.type(description="The input broke the rules; every bad field is named at once.")
class ValidationErrors:
    errors: list[FieldErrorType]


RecordConversionResult = Annotated[
    ConversionRecorded
    | DuplicateConversion
    | ConversionConflict
    | ClickNotFound
    | ValidationErrors,
    strawberry.union("RecordConversionResult"),
]


def _result(outcome: outcomes.Outcome) -> RecordConversionResult:
    match outcome:
        case outcomes.Recorded(conversion=record, test=test):
            return ConversionRecorded(conversion=node(record), test=test)
        case outcomes.Duplicate(conversion=record):
            return DuplicateConversion(conversion=node(record))
        case outcomes.Conflict(conversion=record, message=message):
            return ConversionConflict(message=message, conversion=node(record))
        case outcomes.ClickNotFound(click_id=click_id):
            return ClickNotFound(click_id=click_id)
        case outcomes.Invalid(errors=errors):
            return ValidationErrors(errors=FieldErrorType.from_errors(errors, RECORD_RENAMES))
        case StoreUnavailable():
            # An outage is no answer about the conversion: an error, so clients retry.
            raise store_unavailable()
        case outcomes.SignatureRefused():
            # Only pixel fires are held to fire policies; an API key vouches for its reports.
            raise AssertionError("a report recorded with an API key was refused its signature")


@strawberry.type
class ConversionQuery:
    @strawberry.field(permission_classes=[CanRead], description="A conversion by its id.")
    async def conversion(
        self, info: Info[GraphQLContext, None], id: uuid.UUID
    ) -> Conversion | None:
        return node_or_none(await info.context.loaders.conversion_by_id.load(id))

    @strawberry.field(permission_classes=[CanRead], description="Conversions, newest first.")
    async def conversions(
        self,
        info: Info[GraphQLContext, None],
        filter: ConversionFilter | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Conversion]:
        return await Connection.listing(
            queries.READS, conditions_of(filter), first, after, info.context
        )


@strawberry.type
class ConversionMutation:
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record an install, registration or deposit, exactly as the pixel would.",
    )
    async def record_conversion(
        self, info: Info[GraphQLContext, None], input: RecordConversionInput
    ) -> RecordConversionResult:
        outcome = await record_conversion(
            input.to_raw(), source=Source.GRAPHQL, access=info.context.access
        )
        return _result(outcome)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description=f"Record up to {MAX_BULK_REPORTS:,} reports in one request: one result "
        "per input, in order, each exactly as recordConversion would answer it (an input "
        "repeating an earlier one of the list is its DuplicateConversion). More inputs: "
        "an error, and nothing is stored.",
    )
    async def record_conversions(
        self, info: Info[GraphQLContext, None], inputs: list[RecordConversionInput]
    ) -> list[RecordConversionResult]:
        try:
            answers = await record_conversions(
                [input.to_raw() for input in inputs],
                source=Source.GRAPHQL,
                access=info.context.access,
            )
        except InvalidInputError as invalid:
            raise bad_user_input("too many inputs", invalid.errors) from invalid
        # One input the store could not take fails the call (STORE_UNAVAILABLE), as it
        # fails recordConversion: a retry answers the stored ones as repeats.
        return [_result(outcome) for outcome in answers]
