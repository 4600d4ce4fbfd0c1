"""Rows to records and back, derived from the record's fields and the table's columns.

A record is a dataclass whose fields are its table's columns by name, except that a
foreign key column `click` is the field `click_id`, and a field whose type is itself
a dataclass (a click's `sub_ids`) spreads over the columns named after its fields.
Enum fields hold their enum, booleans are booleans on both engines, and a list field
is stored as JSON text (a rejected fire's errors). Nothing here
names a column: adding one touches the table, its migration and the record.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec
from piccolo.table import Table

RecordT = TypeVar("RecordT")
FOREIGN_KEY_SUFFIX = "_id"


def _plain_type(hint: Any) -> Any:
    """`X | None` -> X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        return members[0] if len(members) == 1 else hint
    return hint


def _reader(hint: Any) -> Callable[[Any], Any] | None:
    """How a stored value becomes the field's value, when it is not already."""
    plain = _plain_type(hint)
    if isinstance(plain, type) and issubclass(plain, enum.Enum):
        return lambda value: None if value is None else plain(value)
    if plain is bool:
        # SQLite hands booleans back as 0 and 1.
        return lambda value: None if value is None else bool(value)
    if typing.get_origin(plain) is list:
        return lambda value: None if value is None else msgspec.json.decode(value, type=plain)
    return None


def _writer(hint: Any) -> Callable[[Any], Any] | None:
    plain = _plain_type(hint)
    if isinstance(plain, type) and issubclass(plain, enum.Enum):
        return lambda value: None if value is None else value.value
    if typing.get_origin(plain) is list:
        return lambda value: None if value is None else msgspec.json.encode(value).decode()
    return None


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    column: str
    read: Callable[[Any], Any] | None
    write: Callable[[Any], Any] | None


@dataclasses.dataclass(frozen=True)
class _Group:
    """A dataclass-typed field spread over one column per field of its own."""

    name: str
    type: type
    columns: tuple[str, ...]


class RowMapping(Generic[RecordT]):
    """The one translation between a table's rows and a record type."""

    def __init__(self, table: type[Table], record_type: type[RecordT]) -> None:
        self.record_type = record_type
        foreign_keys = {column._meta.name for column in table._meta.foreign_key_columns}
        columns = {column._meta.name for column in table._meta.columns}
        hints = typing.get_type_hints(record_type)
        self._fields: list[_Field] = []
        self._groups: list[_Group] = []
        for field in dataclasses.fields(record_type):  # type: ignore[arg-type]
            hint = hints[field.name]
            if dataclasses.is_dataclass(hint) and isinstance(hint, type):
                group_columns = tuple(member.name for member in dataclasses.fields(hint))
                self._groups.append(_Group(field.name, hint, group_columns))
                continue
            referenced = field.name.removesuffix(FOREIGN_KEY_SUFFIX)
            column = referenced if referenced in foreign_keys else field.name
            self._fields.append(_Field(field.name, column, _reader(hint), _writer(hint)))
        mapped = {field.column for field in self._fields} | {
            column for group in self._groups for column in group.columns
        }
        if mapped != columns:
            raise TypeError(
                f"{record_type.__name__} does not match table {table._meta.tablename}: "
                f"columns without a field {sorted(columns - mapped)}, "
                f"fields without a column {sorted(mapped - columns)}"
            )
        self.columns: tuple[str, ...] = tuple(
            column._meta.db_column_name for column in table._meta.columns
        )

    def record(self, row: Mapping[str, Any]) -> RecordT:
        values: dict[str, Any] = {}
        for field in self._fields:
            value = row[field.column]
            values[field.name] = value if field.read is None else field.read(value)
        for group in self._groups:
            values[group.name] = group.type(**{column: row[column] for column in group.columns})
        return self.record_type(**values)

    def row(self, record: RecordT) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field in self._fields:
            value = getattr(record, field.name)
            values[field.column] = value if field.write is None else field.write(value)
        for group in self._groups:
            member = getattr(record, group.name)
            values.update({column: getattr(member, column) for column in group.columns})
        return values

    def values(self, record: RecordT) -> list[Any]:
        """The record's values in the table's column order, for positional inserts."""
        row = self.row(record)
        return [row[column] for column in self.columns]
