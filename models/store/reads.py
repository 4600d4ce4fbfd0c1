"""Reads of one table into one record type: by ids, keyset pages, counts.

Every list is newest first on `(timestamp, id)`; see models/paging.py for cursors.
Each feature declares its reads once (`TableReads(Conversion, ConversionRecord,
Conversion.occurred_at)`) and passes its filter as Piccolo conditions.

Every read takes the caller's `Access` (models/partners/access.py) and keeps to it:
this is where a partner key's view is applied, for root lists, loaders and the
checks of mutations alike.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from piccolo.columns import Column
from piccolo.query import Select
from piccolo.query.functions.aggregate import Count
from piccolo.table import Table

from models.paging import Cursor, Page
from models.partners.access import Access
from models.store.rows import RowMapping


class _Identified(Protocol):
    CURSOR_KIND: ClassVar[str]

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def cursor(self) -> Cursor: ...


RecordT = TypeVar("RecordT", bound=_Identified)
Condition = Any  # a Piccolo `Where` or combination of them


class TableReads(Generic[RecordT]):
    def __init__(self, table: type[Table], record_type: type[RecordT], timestamp: Column) -> None:
        self.table = table
        self.mapping = RowMapping(table, record_type)
        self.cursor_kind: str = record_type.CURSOR_KIND
        self.timestamp = timestamp
        self.id = table._meta.primary_key

    def _where(self, query: Any, conditions: Sequence[Condition]) -> Any:
        for condition in conditions:
            query = query.where(condition)
        return query

    def _after(self, cursor: Cursor) -> Condition:
        # `timestamp <= t` alone is an index range condition; the OR only breaks ties.
        return (self.timestamp <= cursor.timestamp) & (
            (self.timestamp < cursor.timestamp) | (self.id < cursor.id)
        )

    def page_query(
        self, conditions: Sequence[Condition], first: int, after: Cursor | None
    ) -> Select:
        """One row more than the page, to tell whether another page follows. Public so a
        test or a benchmark can EXPLAIN exactly what runs."""
        query = self._where(self.table.select(), conditions)
        if after is not None:
            query = query.where(self._after(after))
        return query.order_by(self.timestamp, self.id, ascending=False).limit(first + 1)

    def _within(self, access: Access, conditions: Sequence[Condition]) -> list[Condition]:
        return [*conditions, *access.conditions(self.table)]

    async def page(
        self,
        access: Access,
        conditions: Sequence[Condition],
        first: int,
        after: Cursor | None = None,
    ) -> Page[RecordT]:
        rows = await self.page_query(self._within(access, conditions), first, after)
        return Page.of([self.mapping.record(row) for row in rows], first)

    async def count(self, access: Access, conditions: Sequence[Condition] = ()) -> int:
        return await self._where(self.table.count(), self._within(access, conditions))

    async def by_ids(self, access: Access, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RecordT]:
        """The records of `ids` that `access` sees; the others are simply missing."""
        if not ids:
            return {}
        query = self.table.select().where(self.id.is_in(list(ids)))
        rows = await self._where(query, access.conditions(self.table))
        return {record.id: record for record in map(self.mapping.record, rows)}

    async def count_by(
        self, access: Access, group: Column, group_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """How many rows each of `group_ids` has in the column `group`."""
        counts = dict.fromkeys(group_ids, 0)
        if not group_ids:
            return counts
        query = self.table.select(group, Count(alias="total")).where(group.is_in(list(group_ids)))
        rows = await self._where(query, access.conditions(self.table)).group_by(group)
        counts.update({row[group._meta.name]: row["total"] for row in rows})
        return counts

    async def pages_by(
        self,
        access: Access,
        group: Column,
        group_ids: Sequence[uuid.UUID],
        first: int,
        after: Cursor | None = None,
    ) -> dict[uuid.UUID, Page[RecordT]]:
        """The same page for many groups (a click's conversions, for many clicks), in two
        statements whatever their number.

        A window function numbers each group's rows newest first, so every group gets at
        most `first + 1` rows however many it has. `access` filters the rows themselves:
        a group's rows are seen together or not at all (a click's conversions are its
        partner's), so a ranked page loses no row `access` would have shown.
        """
        pages: dict[uuid.UUID, Page[RecordT]] = {
            group_id: Page(rows=[], has_next_page=False) for group_id in group_ids
        }
        if not group_ids:
            return pages
        timestamp, group_name = self.timestamp._meta.db_column_name, group._meta.db_column_name
        arguments: list[Any] = list(group_ids)
        after_condition = ""
        if after is not None:
            after_condition = f"AND {timestamp} <= {{}} AND ({timestamp} < {{}} OR id < {{}})"
            arguments += [after.timestamp, after.timestamp, after.id]
        arguments.append(first + 1)
        ranked = await self.table.raw(
            "SELECT id FROM ("
            " SELECT id, ROW_NUMBER() OVER"
            f"  (PARTITION BY {group_name} ORDER BY {timestamp} DESC, id DESC) AS position"
            f" FROM {self.table._meta.tablename}"
            f" WHERE {group_name} IN ({', '.join(['{}'] * len(group_ids))}) {after_condition}"
            ") AS ranked WHERE position <= {}",
            *arguments,
        )
        # SQLite hands the id back as text through the subquery, PostgreSQL as a UUID.
        ids = [uuid.UUID(str(row["id"])) for row in ranked]
        by_group: dict[uuid.UUID, list[RecordT]] = defaultdict(list)
        query = self._where(
            self.table.select().where(self.id.is_in(ids)), access.conditions(self.table)
        )
        for row in await query if ids else []:
            by_group[row[group_name]].append(self.mapping.record(row))
        for group_id, records in by_group.items():
            records.sort(key=lambda record: record.cursor, reverse=True)
            pages[group_id] = Page.of(records, first)
        return pages
