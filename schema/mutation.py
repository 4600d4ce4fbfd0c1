"""Mutations: record a conversion through the pixel's own service, create a click."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from models import outcomes, queries
from models.clicks import SUB_ID_NAMES, InvalidClickError, NewClick, create_click
from models.conversion_input import FieldError, RawConversion
from models.conversion_service import record_conversion
from models.tables import Source
from schema.errors import bad_user_input, store_unavailable
from schema.permissions import CanWrite
from schema.types import Click, Conversion, ConversionType, Currency, MarketingType

# The service names fields as the pixel's parameters; clients know this input's names.
RECORD_FIELD_NAMES = {
    "click_id": "clickId",
    "type": "type",
    "test": "test",
    "player_id": "playerId",
    "transaction_id": "transactionId",
    "currency": "currency",
    "amount": "amount",
    "time": "occurredAt",
}
CLICK_FIELD_NAMES = {
    "player_id": "playerId",
    "ip": "ip",
    "user_agent": "userAgent",
    "referrer": "referrer",
    "country": "country",
    "tracking_link_id": "trackingLinkId",
    "type": "type",
    **{name: name for name in SUB_ID_NAMES},
}


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
    amount: str | None = strawberry.field(
        default=None,
        description='Deposits only, together with currency: a decimal string such as "40.00", '
        "more than 0, at most 1000000000, at most 2 decimal places.",
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
            amount=self.amount,
            time=self.occurred_at.isoformat() if self.occurred_at else None,
        )


@strawberry.input(description="A click created server-side; every field is optional.")
class CreateClickInput:
    player_id: str | None = None
    ip: str | None = strawberry.field(default=None, description="The player's IPv4 or IPv6.")
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = strawberry.field(
        default=None, description="ISO 3166-1 alpha-2, such as DE."
    )
    tracking_link_id: uuid.UUID | None = strawberry.field(
        default=None, description="A tracking link the click belongs to, if any."
    )
    type: MarketingType | None = strawberry.field(default=None, description="The marketing type.")
    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    s4: str | None = None
    s5: str | None = None

    def to_new_click(self) -> NewClick:
        sub_ids = {"s1": self.s1, "s2": self.s2, "s3": self.s3, "s4": self.s4, "s5": self.s5}
        return NewClick(
            player_id=self.player_id,
            ip=self.ip,
            user_agent=self.user_agent,
            referrer=self.referrer,
            country=self.country,
            tracking_link_id=self.tracking_link_id,
            type=self.type.value if self.type else None,
            sub_ids={name: value for name, value in sub_ids.items() if value is not None},
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


@strawberry.type(description="No click has this id.")
class ClickNotFound:
    click_id: uuid.UUID


@strawberry.type(name="FieldError")
class FieldErrorType:
    field: str | None = strawberry.field(description="The input field, null for the whole input.")
    code: str
    message: str


@strawberry.type(description="The input broke the rules; every bad field is named at once.")
class ValidationErrors:
    errors: list[FieldErrorType]

    @classmethod
    def from_errors(cls, errors: list[FieldError]) -> ValidationErrors:
        return cls(
            errors=[
                FieldErrorType(
                    field=RECORD_FIELD_NAMES.get(error.field, error.field) if error.field else None,
                    code=error.code,
                    message=error.message,
                )
                for error in errors
            ]
        )


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
            return ConversionRecorded(conversion=Conversion.from_record(record), test=test)
        case outcomes.Duplicate(conversion=record):
            return DuplicateConversion(conversion=Conversion.from_record(record))
        case outcomes.Conflict(message=message):
            return ConversionConflict(message=message)
        case outcomes.ClickNotFound(click_id=click_id):
            return ClickNotFound(click_id=click_id)
        case outcomes.Invalid(errors=errors):
            return ValidationErrors.from_errors(errors)
        case outcomes.StoreUnavailable():
            # An outage is no answer about the conversion: an error, so clients retry.
            raise store_unavailable()
    raise AssertionError(f"unhandled outcome {outcome!r}")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record an install, registration or deposit, exactly as the pixel would.",
    )
    async def record_conversion(self, input: RecordConversionInput) -> RecordConversionResult:
        return _result(await record_conversion(input.to_raw(), source=Source.GRAPHQL))

    @strawberry.mutation(permission_classes=[CanWrite], description="Create a click.")
    async def create_click(self, input: CreateClickInput) -> Click:
        try:
            click_id = await create_click(input.to_new_click())
        except InvalidClickError as invalid:
            raise bad_user_input("invalid click", invalid.errors, CLICK_FIELD_NAMES) from invalid
        found = await queries.clicks_by_ids([click_id])
        return Click.from_record(found[click_id])
