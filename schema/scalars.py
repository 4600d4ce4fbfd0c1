"""How the custom scalars read: `DateTime` in UTC, to the microsecond, with `Z` (a report's
local hours keep their zone's offset).

Strawberry's own DateTime writes whatever offset and precision a value has, so one
conversion's `occurredAt` could read `...T10:00:00+00:00` and its `receivedAt`
`...T10:00:00.123456+00:00`. Inputs are read as Strawberry reads them: any ISO 8601
date-time; one without an offset reaches the service, which names the field.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from strawberry.schema.types.base_scalars import DateTimeDefinition, DecimalDefinition
from strawberry.types.scalar import ScalarDefinition


def serialize_datetime(value: datetime) -> str:
    if isinstance(value.tzinfo, ZoneInfo):
        # A local time a report asked for (a row's hour), shown with its own offset.
        return value.isoformat(timespec="microseconds")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WrittenDecimal(Decimal):
    """A `Decimal` input that keeps the text the client wrote.

    The service judges an amount by its text, as it judges the pixel's (`+5`, `1e3`,
    ` 40` and non-ASCII digits are errors, never read as numbers), so GraphQL clients
    meet the same rules and the same typed errors. Text that is no number at all is
    NaN here, and the service names it like any other bad amount.
    """

    written: str

    def __new__(cls, written: object) -> WrittenDecimal:
        text = written if isinstance(written, str) else str(written)
        try:
            value = super().__new__(cls, text)
        except (InvalidOperation, ValueError):
            value = super().__new__(cls, "NaN")
        value.written = text
        return value


def written(amount: Decimal) -> str:
    """The text an amount arrived as."""
    return amount.written if isinstance(amount, WrittenDecimal) else str(amount)


SCALAR_MAP: dict[object, ScalarDefinition] = {
    datetime: dataclasses.replace(
        DateTimeDefinition,
        description="An ISO 8601 date-time. Answers are UTC to the microsecond, "
        "as 2026-11-25T10:00:00.000000Z, except a report's local hours, which carry "
        "their offset; inputs take Z or an offset.",
        serialize=serialize_datetime,
    ),
    Decimal: dataclasses.replace(
        DecimalDefinition,
        description='An exact decimal, written as a string: "40.00".',
        parse_value=lambda value: WrittenDecimal(value),
    ),
}
