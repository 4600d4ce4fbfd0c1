"""Group commit: one transaction records every report that arrived during the last one.

A commit costs the database far more than a row, so each worker process queues its
validated reports and a single flusher writes whatever has queued in one
transaction: a handful of statements for the whole batch instead of several per
report (models/batch_store.py). Every report still gets its own outcome (recorded,
duplicate, conflict, click not found, too early for its click), computed in arrival
order, and every caller waits for its batch's commit: an answer never runs ahead of
the data.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

from models.batch_store import (
    ClickState,
    DepositKey,
    EventKey,
    RepeatFoundError,
    Resolution,
    Resolver,
    write_postgres,
    write_sqlite,
)
from models.conversion_input import ConversionInput, InvalidConversionError, check_not_before_click
from models.database import PostgresStore, SQLiteStore, is_store_unavailable, write_budget
from models.outcomes import (
    ClickNotFound,
    Conflict,
    ConversionRecord,
    Duplicate,
    Invalid,
    Outcome,
    Recorded,
    StoreUnavailable,
)
from models.tables import Conversion, ConversionType, Stage

logger = logging.getLogger(__name__)

# Bounded so one slow batch holds few callers and its SQLite statements stay well under
# the engine's parameter limit.
MAX_BATCH_SIZE = 200
# After a commit, reports already waiting gather this long before the next batch:
# each commit has a fixed cost (round trips, a WAL flush), so fuller batches spend
# less per report. Applies only under load; a lone report is written at once.
BATCH_GATHER_SECONDS = 0.001


def event_key(conversion: ConversionInput) -> EventKey | None:
    if conversion.type is not ConversionType.DEPOSIT:
        return (conversion.click_id, conversion.type, None)
    if conversion.transaction_id is None:
        return None
    return (conversion.click_id, conversion.type, conversion.transaction_id)


@dataclass(eq=False, slots=True)
class _Report:
    conversion: ConversionInput
    record: ConversionRecord
    answer: asyncio.Future[Outcome]
    # Event-loop time by which the caller must have its answer; None: no deadline.
    deadline: float | None


class GroupCommitter:
    def __init__(self) -> None:
        self._queue: deque[_Report] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, conversion: ConversionInput, record: ConversionRecord) -> Outcome:
        """Queue the report and wait for its batch's commit, or for its deadline.

        The flusher owns every deadline: a batch runs under the earliest deadline of its
        reports, and a report still queued at its deadline is answered unavailable
        without reaching the store. A caller that goes away cancels only its own
        answer, never the batch it shares.
        """
        loop = asyncio.get_running_loop()
        budget = write_budget(Conversion._meta.db)
        report = _Report(
            conversion,
            record,
            answer=loop.create_future(),
            deadline=None if budget is None else loop.time() + budget,
        )
        self._queue.append(report)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await report.answer

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                if batch := self._take_batch(loop.time()):
                    await self._commit(batch)
                    if self._queue:
                        await asyncio.sleep(BATCH_GATHER_SECONDS)
        finally:
            self._flusher = None

    def _take_batch(self, now: float) -> list[_Report]:
        batch: list[_Report] = []
        while self._queue and len(batch) < MAX_BATCH_SIZE:
            report = self._queue.popleft()
            if report.answer.done():
                continue  # its caller went away before the store saw it
            if report.deadline is not None and report.deadline <= now:
                # Queued behind a stalled batch until its budget ran out: never stored.
                report.answer.set_result(StoreUnavailable(reason="TimeoutError"))
                continue
            batch.append(report)
        return batch

    async def _commit(self, batch: list[_Report]) -> None:
        deadlines = [report.deadline for report in batch if report.deadline is not None]
        try:
            async with asyncio.timeout_at(min(deadlines) if deadlines else None):
                outcomes: Sequence[Outcome] = await _write_batch(batch)
        except Exception as error:
            if not is_store_unavailable(error):
                logger.exception("recording a batch of %d conversions failed", len(batch))
                for report in batch:
                    if not report.answer.done():
                        report.answer.set_exception(error)
                return
            logger.warning("store unavailable while recording conversions: %r", error)
            outcomes = [StoreUnavailable(reason=type(error).__name__)] * len(batch)
        for report, outcome in zip(batch, outcomes, strict=True):
            if not report.answer.done():
                report.answer.set_result(outcome)


_committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommitter] = (
    weakref.WeakKeyDictionary()
)


def committer() -> GroupCommitter:
    """The running event loop's committer: one queue and one flusher per worker."""
    loop = asyncio.get_running_loop()
    if loop not in _committers:
        _committers[loop] = GroupCommitter()
    return _committers[loop]


def _wanted(batch: list[_Report]) -> tuple[list[uuid.UUID], list[DepositKey]]:
    """The batch's clicks, and the (click, transaction_id) pairs of its deposits, sorted."""
    click_ids = sorted({report.conversion.click_id for report in batch})
    deposit_keys = sorted(
        {
            (report.conversion.click_id, report.conversion.transaction_id)
            for report in batch
            if report.conversion.type is ConversionType.DEPOSIT
            and report.conversion.transaction_id is not None
        }
    )
    return click_ids, deposit_keys  # type: ignore[return-value]


async def _write_batch(batch: list[_Report]) -> list[Outcome]:
    engine = Conversion._meta.db
    click_ids, deposit_keys = _wanted(batch)
    resolve = partial(_resolve_batch, batch)
    if isinstance(engine, SQLiteStore):
        resolution = await engine.run_in_write_transaction(
            partial(write_sqlite, click_ids=click_ids, deposit_keys=deposit_keys, resolve=resolve)
        )
    else:
        # A test report writes nothing, so only a look-up can tell it is a repeat.
        look_up_repeats = any(report.conversion.test for report in batch)
        try:
            resolution = await _write_postgres_batch(
                engine, click_ids, deposit_keys, resolve, look_up_repeats=look_up_repeats
            )
        except RepeatFoundError:
            if look_up_repeats:
                raise
            # A retry of something stored, mostly: undone, and redone knowing the store.
            resolution = await _write_postgres_batch(
                engine, click_ids, deposit_keys, resolve, look_up_repeats=True
            )
    return resolution.outcomes


async def _write_postgres_batch(
    engine: PostgresStore,
    click_ids: list[uuid.UUID],
    deposit_keys: list[DepositKey],
    resolve: Resolver,
    *,
    look_up_repeats: bool,
) -> Resolution:
    async with engine.transaction() as transaction:
        connection = transaction.connection
        return await write_postgres(
            connection, click_ids, deposit_keys, resolve, look_up_repeats=look_up_repeats
        )


def _resolve_batch(
    batch: list[_Report],
    clicks: dict[uuid.UUID, ClickState],
    recorded: dict[EventKey, ConversionRecord],
) -> Resolution:
    """Every report's outcome, in arrival order, against the locked clicks and the
    stored events they may repeat; and what the batch must write."""
    # Only a deposit takes a click to the deposit stage, and stages never move back.
    deposited = {id_ for id_, state in clicks.items() if state.stage == Stage.DEPOSIT}
    outcomes: list[Outcome] = []
    new_records: list[ConversionRecord] = []
    for report in batch:
        outcome = _resolve(report, clicks, recorded, deposited)
        outcomes.append(outcome)
        if isinstance(outcome, Recorded) and not outcome.test:
            new_records.append(outcome.conversion)
    changed = {id_: state for id_, state in clicks.items() if state.changed}
    return Resolution(outcomes, new_records, changed)


def _resolve(
    report: _Report,
    clicks: dict[uuid.UUID, ClickState],
    recorded: dict[EventKey, ConversionRecord],
    deposited: set[uuid.UUID],
) -> Outcome:
    """One report's outcome against the store as the earlier reports of the batch left it."""
    conversion = report.conversion
    click = clicks.get(conversion.click_id)
    if click is None:
        return ClickNotFound(conversion.click_id)
    try:
        check_not_before_click(conversion, click.created_at)
    except InvalidConversionError as invalid:
        return Invalid(invalid.errors)

    key = event_key(conversion)
    if key is not None and key in recorded:
        existing = recorded[key]
        if conversion.type is ConversionType.DEPOSIT and (
            existing.amount_minor != conversion.amount_minor
            or existing.currency != conversion.currency
        ):
            return Conflict(
                existing,
                message=(
                    f"transaction_id {conversion.transaction_id!r} was already recorded on "
                    "this click with a different amount or currency"
                ),
            )
        return Duplicate(existing)

    is_deposit = conversion.type is ConversionType.DEPOSIT
    record = report.record
    if is_deposit and conversion.click_id not in deposited:
        record = replace(record, is_first_deposit=True)
    if conversion.test:
        # Processed like any other, but leaves nothing behind for the reports after it.
        return Recorded(record, test=True)
    if key is not None:
        recorded[key] = record
    if is_deposit:
        deposited.add(conversion.click_id)
    reached = Stage.reached_by(conversion.type)
    if reached > click.stage:
        click.stage, click.changed = reached.value, True
    if click.player_id is None and conversion.player_id is not None:
        click.player_id, click.changed = conversion.player_id, True
    return Recorded(record)
