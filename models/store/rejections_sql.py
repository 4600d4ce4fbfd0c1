"""Pruning rejected fires past their retention (their insert rides a group commit's
batch: models/store/batch_sql.py).

Pruning deletes the oldest rows in small batches, one statement per batch, so it never
holds a write lock for long: on SQLite it takes the writers' turn like any batch and
gives it back after each; on PostgreSQL one worker at a time prunes, the one that holds
a transaction-level advisory lock (released at its commit), and the others skip.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from models.store.engine import SQLiteStore, current_engine

# Any constant shared by every worker: the key of the pruners' advisory lock.
_PRUNING_LOCK_KEY = 0x46495245  # "FIRE"
_OLDEST = "SELECT id FROM fire_rejection WHERE at < {cutoff} ORDER BY at LIMIT {limit}"
POSTGRES_PRUNE = (
    f"DELETE FROM fire_rejection WHERE id IN ({_OLDEST.format(cutoff='$1', limit='$2')})"
)
_SQLITE_PRUNE = f"DELETE FROM fire_rejection WHERE id IN ({_OLDEST.format(cutoff='?', limit='?')})"


async def prune(cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` of the oldest rows from before `cutoff`; how many went (0 on
    PostgreSQL when another worker is pruning)."""
    engine = current_engine()
    if isinstance(engine, SQLiteStore):
        return await engine.run_in_write_transaction(
            lambda connection: connection.execute(_SQLITE_PRUNE, (cutoff, limit)).rowcount
        )
    async with engine.transaction() as transaction:
        connection: asyncpg.Connection = transaction.connection
        if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", _PRUNING_LOCK_KEY):
            return 0
        status: str = await connection.execute(POSTGRES_PRUNE, cutoff, limit)
    # asyncpg answers with the command tag: "DELETE 42".
    return int(status.rsplit(" ", 1)[1])
