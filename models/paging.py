"""Keyset pages: newest first on (timestamp, id), with opaque cursors.

A cursor is the sort key of the last row a client saw, so rows inserted while a
client pages never shift the rows after it: nothing repeats, nothing hides.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Generic, Protocol, TypeVar


class InvalidCursorError(ValueError):
    """A cursor that this API did not hand out, or one for another kind of row."""


@dataclass(frozen=True, order=True)
class Cursor:
    """The sort key of a row: its timestamp, then its id to break ties."""

    timestamp: datetime
    id: uuid.UUID

    def encode(self, kind: str) -> str:
        raw = f"{kind}|{self.timestamp.astimezone(UTC).isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, kind: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            cursor_kind, timestamp, row_id = raw.split("|")
            if cursor_kind != kind:
                raise ValueError(f"a {cursor_kind} cursor, not a {kind} cursor")
            parsed = datetime.fromisoformat(timestamp)
            if parsed.tzinfo is None:
                raise ValueError("a cursor timestamp without an offset")
            return cls(parsed.astimezone(UTC), uuid.UUID(row_id))
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as error:
            raise InvalidCursorError(f"{value!r} is not a valid {kind} cursor") from error


class Paged(Protocol):
    """A record that pages: its cursor kind, and its sort key."""

    CURSOR_KIND: ClassVar[str]

    @property
    def cursor(self) -> Cursor: ...


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    has_next_page: bool

    @classmethod
    def of(cls, rows: list[RowT], first: int) -> Page[RowT]:
        """A page from `first + 1` fetched rows: the extra one says another page follows."""
        return cls(rows=rows[:first], has_next_page=len(rows) > first)
