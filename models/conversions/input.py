"""The conversion input: every rule about what a report may say, in one place.

Both faces (the pixel's query string and GraphQL's mutation input) hand over the
values as the strings they received; `parse_conversion` turns them into a typed
`ConversionInput` or reports every bad field at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from models.errors import FieldError, InvalidInputError, text_errors
from models.store.tables import MAX_ID_LENGTH, ConversionType, Currency

MAX_AMOUNT_MINOR = 1_000_000_000 * 100
# The clock skew tolerated between the reporter and us, and between the click and the report.
TIME_TOLERANCE = timedelta(minutes=5)
# ASCII digits only: Python's \d would also accept Arabic-Indic and other digits. No
# named groups: OpenAPI publishes this pattern, and JSON Schema reads ECMA-262 regexes.
AMOUNT_PATTERN = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
# An unencoded "+" in a query string arrives as a space: "10:00:00 02:00" meant "+02:00".
OFFSET_LOST_TO_SPACE = re.compile(r"(?P<datetime>.*[0-9]) (?P<offset>[0-9]{2}(?::?[0-9]{2})?)")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True, kw_only=True)
class RawConversion:
    """A report as received: every value is the string the reporter sent, or None."""

    click_id: str
    type: str | None = None
    test: str | None = None
    player_id: str | None = None
    currency: str | None = None
    amount: str | None = None
    time: str | None = None
    transaction_id: str | None = None

    def as_test(self) -> RawConversion:
        """The report as a test fire (what HEAD checks). A `test` that is not a boolean
        stays as sent, so that the check names it as a stored fire's would."""
        if self.test and self.test.lower() not in BOOLEANS:
            return self
        return replace(self, test="true")


@dataclass(frozen=True, kw_only=True)
class ConversionInput:
    click_id: uuid.UUID
    type: ConversionType
    received_at: datetime
    occurred_at: datetime
    test: bool = False
    player_id: str | None = None
    transaction_id: str | None = None
    currency: Currency | None = None
    amount_minor: int | None = None


@dataclass
class _Collector:
    errors: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, code: str, message: str) -> None:
        self.errors.append(FieldError(field_name, code, message))


def parse_conversion(raw: RawConversion, *, received_at: datetime) -> ConversionInput:
    """Validate a report; raise InvalidInputError naming every bad field."""
    errors = _Collector()
    click_id = _parse_click_id(raw.click_id, errors)
    conversion_type = _parse_type(raw.type, errors)
    test = _parse_boolean("test", raw.test, errors)
    player_id = _parse_identifier("player_id", raw.player_id, errors)
    transaction_id = _parse_identifier("transaction_id", raw.transaction_id, errors)
    currency = _parse_currency(raw.currency, errors)
    amount_minor = _parse_amount(raw.amount, errors)
    occurred_at = _parse_time(raw.time, received_at, errors)

    for name, value in (("currency", raw.currency), ("amount", raw.amount)):
        if value and conversion_type not in (None, ConversionType.DEPOSIT):
            errors.add(name, "not_allowed", "{" + name + "} is only allowed on deposits")
    if conversion_type in (None, ConversionType.DEPOSIT):
        if raw.amount and not raw.currency:
            errors.add("currency", "required", "{currency} is required when {amount} is given")
        if raw.currency and not raw.amount:
            errors.add("amount", "required", "{amount} is required when {currency} is given")

    if errors.errors:
        raise InvalidInputError(errors.errors)
    assert click_id is not None
    assert conversion_type is not None
    return ConversionInput(
        click_id=click_id,
        type=conversion_type,
        received_at=received_at,
        occurred_at=occurred_at or received_at,
        test=bool(test),
        player_id=player_id,
        transaction_id=transaction_id,
        currency=currency,
        amount_minor=amount_minor,
    )


def validation_errors(raw: RawConversion, known: list[FieldError]) -> list[FieldError]:
    """The errors of `raw` on fields not already named in `known`, so one answer names all."""
    named = {error.field for error in known}
    try:
        parse_conversion(raw, received_at=datetime.now(UTC))
    except InvalidInputError as invalid:
        return [error for error in invalid.errors if error.field not in named]
    return []


def check_not_before_click(conversion: ConversionInput, click_created_at: datetime) -> None:
    """The one rule that needs the stored click."""
    if conversion.occurred_at < click_created_at - TIME_TOLERANCE:
        message = "{time} is more than 5 minutes before the click was created"
        raise InvalidInputError([FieldError("time", "before_click", message)])


def format_amount(amount_minor: int) -> str:
    """Minor units back to the decimal string they came from: 4000 -> "40.00"."""
    units, cents = divmod(amount_minor, 100)
    return f"{units}.{cents:02d}"


def _parse_click_id(value: str, errors: _Collector) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.add("click_id", "invalid_uuid", "{click_id} must be a UUID")
        return None


def _parse_type(value: str | None, errors: _Collector) -> ConversionType | None:
    if not value:
        errors.add("type", "required", "{type} is required: install, registration or deposit")
        return None
    try:
        return ConversionType(value.lower())
    except ValueError:
        errors.add("type", "invalid_choice", "{type} must be install, registration or deposit")
        return None


def _parse_boolean(name: str, value: str | None, errors: _Collector) -> bool | None:
    if not value:
        return None
    try:
        return BOOLEANS[value.lower()]
    except KeyError:
        errors.add(name, "invalid_boolean", "{" + name + "} must be true, false, 1 or 0")
        return None


def _parse_identifier(name: str, value: str | None, errors: _Collector) -> str | None:
    if problems := text_errors(name, value, max_length=MAX_ID_LENGTH):
        errors.errors += problems
        return None
    return value or None


def _parse_currency(value: str | None, errors: _Collector) -> Currency | None:
    if not value:
        return None
    try:
        return Currency(value.lower())
    except ValueError:
        errors.add("currency", "invalid_choice", "{currency} must be eur, usd or gbp")
        return None


def _parse_amount(value: str | None, errors: _Collector) -> int | None:
    if not value:
        return None
    match = AMOUNT_PATTERN.fullmatch(value)
    if match is None:
        errors.add(
            "amount",
            "invalid_amount",
            "{amount} must be a decimal number with at most 2 decimal places, such as 40.00",
        )
        return None
    units, cents = match.groups()
    amount_minor = int(units) * 100 + int((cents or "0").ljust(2, "0"))
    if not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        message = "{amount} must be greater than 0 and at most 1000000000"
        errors.add("amount", "out_of_range", message)
        return None
    return amount_minor


def _parse_time(value: str | None, received_at: datetime, errors: _Collector) -> datetime | None:
    if not value:
        return None
    restored = OFFSET_LOST_TO_SPACE.fullmatch(value)
    candidate = f"{restored['datetime']}+{restored['offset']}" if restored else value
    try:
        parsed = datetime.fromisoformat(candidate)
        if not any(separator in candidate for separator in "Tt "):
            raise ValueError("a date without a time of day")
    except ValueError:
        errors.add(
            "time",
            "invalid_datetime",
            "{time} must be an ISO 8601 date-time such as 2026-11-25T10:00:00Z",
        )
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        message = "{time} must end with Z or a UTC offset such as +02:00"
        errors.add("time", "missing_offset", message)
        return None
    try:
        occurred_at = parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-14:00 is a valid string whose UTC instant has no datetime.
        errors.add("time", "invalid_datetime", "{time} is outside the supported calendar")
        return None
    if occurred_at > received_at + TIME_TOLERANCE:
        errors.add("time", "in_future", "{time} is more than 5 minutes in the future")
        return None
    return occurred_at
