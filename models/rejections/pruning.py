"""Pruning without a cron: every worker runs a pruner in its lifespan that deletes
rejected fires older than the retention, in small batches, now and then.

Rounds come at a jittered interval, so workers started together do not prune together;
on PostgreSQL only one worker prunes at a time anyway, and on SQLite each batch takes
the writers' turn only for its own short statement (models/store/rejections_sql.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime, timedelta

from models.store import rejections_sql
from models.store.engine import is_store_unavailable

logger = logging.getLogger(__name__)

# Rows are few (the cap bounds them), so a round every few minutes keeps up.
PRUNE_INTERVAL_SECONDS = 300.0
# Small enough that one batch holds the write lock for milliseconds.
PRUNE_BATCH_SIZE = 500
# Between batches of one round, so that the pixel's writers get their turns.
PAUSE_BETWEEN_BATCHES_SECONDS = 0.05


class Pruner:
    """Deletes rejected fires older than `retention` until stopped; `prune_once` is one
    round."""

    def __init__(
        self,
        retention: timedelta,
        *,
        interval_seconds: float = PRUNE_INTERVAL_SECONDS,
        batch_size: int = PRUNE_BATCH_SIZE,
    ) -> None:
        self.retention = retention
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self, now: datetime | None = None) -> int:
        """Delete every row older than the retention, batch by batch; how many went."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        pruned = 0
        while True:
            deleted = await rejections_sql.prune(cutoff, self.batch_size)
            pruned += deleted
            if deleted < self.batch_size:
                return pruned
            await asyncio.sleep(PAUSE_BETWEEN_BATCHES_SECONDS)

    def _jittered(self) -> float:
        return self.interval_seconds * random.uniform(0.5, 1.5)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._jittered())
            try:
                await self.prune_once()
            except Exception as error:
                # The store is down or a bug: log, and try again next round.
                if is_store_unavailable(error):
                    logger.warning("pruning rejected fires: store unavailable: %s", error)
                else:
                    logger.exception("pruning rejected fires failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fire-rejection-pruner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
