"""Retention's SQL: old clicks that nothing refers to, counted and deleted in batches.

"Nothing refers to" is read from the tables themselves: every foreign key that
references a click (a conversion's, and any added later) must have no row pointing at
it. A batch is one short statement, so the pixel and the tracking link meet at most one
batch's locks: on PostgreSQL rows another transaction holds are skipped (SKIP LOCKED),
and a conversion that commits for a click while its batch runs makes the batch fail on
the foreign key (ON DELETE RESTRICT) instead of losing the conversion: the caller runs
the batch again, which then leaves that click. On SQLite each batch takes the writers'
turn and releases it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import asyncpg

from models.store.engine import SQLiteStore, current_engine
from models.store.tables import Click

# Runs of a batch that a concurrent conversion made fail, before the failure stands.
RACE_ATTEMPTS = 3


def _unreferenced() -> str:
    """The condition, on `click`, that no row of any table refers to the click."""
    return " AND ".join(
        f'NOT EXISTS (SELECT 1 FROM "{column._meta.table._meta.tablename}" AS referrer '
        f'WHERE referrer."{column._meta.db_column_name}" = click.id)'
        for column in Click._meta.foreign_key_references
    )


def _old_and_unreferenced() -> str:
    conditions = ["click.created_at < {cutoff}"]
    if references := _unreferenced():
        conditions.append(references)
    return " AND ".join(conditions)


async def count_prunable_clicks(cutoff: datetime) -> int:
    """Clicks made before `cutoff` that nothing refers to."""
    where = _old_and_unreferenced().format(cutoff="{}")
    rows = await Click.raw(f"SELECT COUNT(*) AS prunable FROM click WHERE {where}", cutoff)
    return int(rows[0]["prunable"])


async def delete_prunable_clicks(cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` of them, oldest first, in one transaction; how many went."""
    engine = current_engine()
    if isinstance(engine, SQLiteStore):
        where = _old_and_unreferenced().format(cutoff="?")
        statement = (
            "DELETE FROM click WHERE id IN "
            f"(SELECT id FROM click WHERE {where} ORDER BY created_at LIMIT ?)"
        )

        def work(connection: sqlite3.Connection) -> int:
            return connection.execute(statement, (cutoff, limit)).rowcount

        return await engine.run_in_write_transaction(work)
    where = _old_and_unreferenced().format(cutoff="$1")
    statement = (
        "DELETE FROM click WHERE id IN (SELECT id FROM click WHERE "
        f"{where} ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    )
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            async with engine.autocommit_connection() as connection:
                status: str = await connection.execute(statement, cutoff, limit)
        except asyncpg.ForeignKeyViolationError:
            # A conversion came for one of the batch's clicks after the statement began:
            # the next statement sees it and leaves that click.
            if attempt == RACE_ATTEMPTS:
                raise
            continue
        # The command tag: "DELETE <rows>".
        return int(status.rsplit(" ", 1)[1])
    raise AssertionError("unreachable")
