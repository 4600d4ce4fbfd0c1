"""A list filter's conditions, built from values that are checked first.

A filter's values reach the store as statement parameters. Some cannot get there:
text with NUL or a lone surrogate (asyncpg and SQLite's UTF-8 codec refuse it), and
an instant whose UTC datetime lies outside the calendar (`0001-01-01T00:00:00+14:00`).
They are input errors naming their field, as every other bad input is, not failures
inside the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Column, Varchar

from models.errors import FieldError, InvalidInputError, text_errors


class Conditions:
    """Collects a filter's conditions, and the errors of the values that make none."""

    def __init__(self) -> None:
        self._conditions: list[Any] = []
        self._errors: list[FieldError] = []

    def add(self, condition: Any) -> None:
        """A condition on a value that needs no check (an id, an enum member)."""
        self._conditions.append(condition)

    def equals(self, column: Varchar, name: str, value: str | None) -> None:
        """`column = value`, for text a column of that length could hold."""
        if value is None:
            return
        # Longer text could match no row; every filtered column is bounded.
        assert column.length is not None
        errors = text_errors(name, value, max_length=column.length)
        if errors:
            self._errors.extend(errors)
        else:
            self._conditions.append(column == value)

    def at_or_after(self, column: Column, name: str, value: datetime | None) -> None:
        instant = self._in_utc(name, value)
        if instant is not None:
            self._conditions.append(column >= instant)

    def before(self, column: Column, name: str, value: datetime | None) -> None:
        instant = self._in_utc(name, value)
        if instant is not None:
            self._conditions.append(column < instant)

    def _in_utc(self, name: str, value: datetime | None) -> datetime | None:
        # SQLite compares timestamps as the UTC text Piccolo writes; PostgreSQL does not care.
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            message = "{" + name + "} is outside the supported calendar"
            self._errors.append(FieldError(name, "invalid_datetime", message))
            return None

    def checked(self) -> list[Any]:
        """The conditions; raises InvalidInputError naming every bad value at once."""
        if self._errors:
            raise InvalidInputError(self._errors)
        return self._conditions
