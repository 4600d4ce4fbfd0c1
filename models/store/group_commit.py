"""Group commit: one transaction records every report that arrived during the last one.

A commit costs the database far more than a row, so each worker process queues its
validated reports and a single flusher writes whatever has queued in one
transaction: a handful of statements for the whole batch instead of several per
report (the batch itself is the caller's `write`, e.g. models/conversions/batch.py
over models/store/batch_sql.py). Every report still gets its own outcome, and every
caller waits for its batch's commit: an answer never runs ahead of the data.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from models.observers import observer
from models.store.engine import current_engine, is_store_unavailable, write_budget

logger = logging.getLogger(__name__)

ReportT = TypeVar("ReportT")
OutcomeT = TypeVar("OutcomeT")

# Bounded so one slow batch holds few callers and its SQLite statements stay well under
# the engine's parameter limit.
MAX_BATCH_SIZE = 200
# After a commit, reports already waiting gather this long before the next batch:
# each commit has a fixed cost (round trips, a WAL flush), so fuller batches spend
# less per report. Applies only under load; a lone report is written at once.
BATCH_GATHER_SECONDS = 0.001


@dataclass(eq=False, slots=True)
class _Waiting(Generic[ReportT, OutcomeT]):
    report: ReportT
    answer: asyncio.Future[OutcomeT]
    # Event-loop time by which the caller must have its answer; None: no deadline.
    deadline: float | None


class GroupCommitter(Generic[ReportT, OutcomeT]):
    """One queue and one flusher; `write` stores a batch in one transaction and
    answers each report, in order; `unavailable` is the outcome of a report the
    store could not take (its reason: the error's type)."""

    def __init__(
        self,
        write: Callable[[list[ReportT]], Awaitable[Sequence[OutcomeT]]],
        unavailable: Callable[[str], OutcomeT],
    ) -> None:
        self._write = write
        self._unavailable = unavailable
        self._queue: deque[_Waiting[ReportT, OutcomeT]] = deque()
        self._flusher: asyncio.Task[None] | None = None

    def enqueue(self, report: ReportT) -> None:
        """Queue the report for the next batch without waiting for its commit: for writes
        no answer depends on (a log). Its outcome, a failure included, is dropped."""
        answer = self._queue_report(report)
        answer.add_done_callback(_drop_outcome)

    def _queue_report(self, report: ReportT) -> asyncio.Future[OutcomeT]:
        loop = asyncio.get_running_loop()
        budget = write_budget(current_engine())
        waiting = _Waiting[ReportT, OutcomeT](
            report,
            answer=loop.create_future(),
            deadline=None if budget is None else loop.time() + budget,
        )
        self._queue.append(waiting)
        if self._flusher is None:
            # In a context of its own: the flusher serves many requests, and its log lines
            # must not carry the request id of the one that happened to start it.
            self._flusher = loop.create_task(self._flush(), context=contextvars.Context())
        return waiting.answer

    async def submit(self, report: ReportT) -> OutcomeT:
        """Queue the report and wait for its batch's commit, or for its deadline.

        The flusher owns every deadline: a batch runs under the earliest deadline of its
        reports, and a report still queued at its deadline is answered unavailable
        without reaching the store. A caller that goes away cancels only its own
        answer, never the batch it shares.
        """
        return await self._queue_report(report)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                if batch := self._take_batch(loop.time()):
                    started = time.perf_counter()
                    await self._commit(batch)
                    observer().batch_committed(len(batch), time.perf_counter() - started)
                    if self._queue:
                        await asyncio.sleep(BATCH_GATHER_SECONDS)
        finally:
            self._flusher = None

    def _take_batch(self, now: float) -> list[_Waiting[ReportT, OutcomeT]]:
        batch: list[_Waiting[ReportT, OutcomeT]] = []
        while self._queue and len(batch) < MAX_BATCH_SIZE:
            waiting = self._queue.popleft()
            if waiting.answer.done():
                continue  # its caller went away before the store saw it
            if waiting.deadline is not None and waiting.deadline <= now:
                # Queued behind a stalled batch until its budget ran out: never stored.
                waiting.answer.set_result(self._unavailable("TimeoutError"))
                continue
            batch.append(waiting)
        return batch

    async def _commit(self, batch: list[_Waiting[ReportT, OutcomeT]]) -> None:
        deadlines = [waiting.deadline for waiting in batch if waiting.deadline is not None]
        try:
            async with asyncio.timeout_at(min(deadlines) if deadlines else None):
                outcomes = await self._write([waiting.report for waiting in batch])
        except Exception as error:
            if is_store_unavailable(error):
                logger.warning("store unavailable while recording a batch: %r", error)
                outcomes = [self._unavailable(type(error).__name__)] * len(batch)
            elif len(batch) > 1:
                # One report the store refuses must not fail the others that shared its
                # transaction: each is tried alone, so only the bad one fails.
                logger.warning(
                    "a batch of %d reports failed (%s); recording them one by one",
                    len(batch),
                    type(error).__name__,
                )
                for waiting in batch:
                    if not waiting.answer.done():
                        await self._commit([waiting])
                return
            else:
                logger.exception("recording a report failed")
                if not batch[0].answer.done():
                    batch[0].answer.set_exception(error)
                return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(outcome)


def _drop_outcome(answer: asyncio.Future[Any]) -> None:
    # Retrieved, so that asyncio does not report a failure nobody awaited; the flusher
    # has already logged it.
    if not answer.cancelled():
        answer.exception()


class PerEventLoop(Generic[ReportT, OutcomeT]):
    """A committer per running event loop: one queue and one flusher per worker (and
    per test loop), created on first use."""

    def __init__(self, create: Callable[[], GroupCommitter[ReportT, OutcomeT]]) -> None:
        self._create = create
        self._committers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, GroupCommitter[ReportT, OutcomeT]
        ] = weakref.WeakKeyDictionary()

    def __call__(self) -> GroupCommitter[ReportT, OutcomeT]:
        loop = asyncio.get_running_loop()
        if loop not in self._committers:
            self._committers[loop] = self._create()
        return self._committers[loop]
