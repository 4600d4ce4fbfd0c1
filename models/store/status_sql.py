"""The statements of a status change, for each engine: lock the conversions, let the
caller decide (models/conversions/status.py), then write their new status, the postback
deliveries it causes and their history, all in one transaction.

The lock is what keeps two concurrent changes of one conversion from both writing the
same transition: PostgreSQL locks the rows (in id order, so two changes cannot deadlock),
SQLite's write transaction holds the database's write lock; either way the second change
reads the status the first one committed.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg

from models.store.engine import SQLiteStore, current_engine

OutcomeT = TypeVar("OutcomeT")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class NewStatus:
    """What one call changes conversions to, why, and who asks (an API key's name)."""

    status: str
    reason: str | None
    changed_by: str


@dataclass(frozen=True)
class Decision(Generic[OutcomeT]):
    """Every id's outcome, in order, and the conversions whose status moves: each id with
    the status it leaves."""

    outcomes: list[OutcomeT]
    changed: dict[uuid.UUID, str]


# Given the stored conversions the ids name (locked), by id.
Decide = Callable[[dict[uuid.UUID, Row]], Decision[OutcomeT]]
# The outbox's seam, for the changed conversions, inside the transaction on the connection.
EnqueuePostgres = Callable[[asyncpg.Connection, list[uuid.UUID]], Awaitable[None]]
EnqueueSQLite = Callable[[sqlite3.Connection, list[uuid.UUID]], None]

_HISTORY_COLUMNS = "id, conversion, from_status, to_status, reason, changed_at, changed_by"

# --- PostgreSQL ---------------------------------------------------------------

_POSTGRES_LOCK = "SELECT * FROM conversion WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
_POSTGRES_UPDATE = "UPDATE conversion SET status = $2 WHERE id = ANY($1::uuid[])"
_POSTGRES_HISTORY = (
    f"INSERT INTO conversion_status_change ({_HISTORY_COLUMNS}) "
    "SELECT gen_random_uuid(), changed.conversion, changed.from_status, $3, $4, $5, $6 "
    "FROM unnest($1::uuid[], $2::varchar[]) AS changed (conversion, from_status)"
)

# --- SQLite -------------------------------------------------------------------

_SQLITE_HISTORY = (
    f"INSERT INTO conversion_status_change ({_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


async def write_status_change(
    ids: Sequence[uuid.UUID],
    new: NewStatus,
    decide: Decide[OutcomeT],
    *,
    enqueue_postgres: EnqueuePostgres,
    enqueue_sqlite: EnqueueSQLite,
) -> list[OutcomeT]:
    """One transaction: lock the conversions `ids` names, `decide`, then write the changed
    ones' status, their deliveries (through the outbox's seam) and their history. Any
    failure rolls all of it back."""
    wanted = sorted(set(ids))
    engine = current_engine()
    if isinstance(engine, SQLiteStore):

        def work(connection: sqlite3.Connection) -> list[OutcomeT]:
            rows = connection.execute(
                f"SELECT * FROM conversion WHERE id IN ({_placeholders(len(wanted))})", wanted
            ).fetchall()
            decision = decide({row["id"]: row for row in rows})
            changed_at = datetime.now(UTC)
            if changed := list(decision.changed):
                connection.execute(
                    f"UPDATE conversion SET status = ? WHERE id IN ({_placeholders(len(changed))})",
                    [new.status, *changed],
                )
                enqueue_sqlite(connection, changed)
                connection.executemany(
                    _SQLITE_HISTORY,
                    [
                        (
                            uuid.uuid4(),
                            conversion_id,
                            from_status,
                            new.status,
                            new.reason,
                            changed_at,
                            new.changed_by,
                        )
                        for conversion_id, from_status in decision.changed.items()
                    ],
                )
            return decision.outcomes

        return await engine.run_in_write_transaction(work)

    async with engine.transaction() as transaction:
        connection: asyncpg.Connection = transaction.connection
        rows = await connection.fetch(_POSTGRES_LOCK, wanted)
        # Taken once the rows are locked: a change that waited for another comes after it.
        changed_at = datetime.now(UTC)
        decision = decide({row["id"]: row for row in rows})
        if changed := list(decision.changed):
            await connection.execute(_POSTGRES_UPDATE, changed, new.status)
            await enqueue_postgres(connection, changed)
            await connection.execute(
                _POSTGRES_HISTORY,
                changed,
                list(decision.changed.values()),
                new.status,
                new.reason,
                changed_at,
                new.changed_by,
            )
    return decision.outcomes
