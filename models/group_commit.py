"""Group commit: one transaction records every report that arrived during the last one.

A commit costs the database far more than a row, so each worker process queues its
validated reports and a single flusher writes whatever has queued in one
transaction: a handful of statements for the whole batch instead of several per
report. Every report still gets its own outcome (recorded, duplicate, conflict,
click not found, too early for its click), computed in arrival order, and every
caller waits for its batch's commit: an answer never runs ahead of the data.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from models.conversion_input import ConversionInput, InvalidConversionError, check_not_before_click
from models.database import is_postgres, is_store_unavailable, write_budget, write_transaction
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
from models.tables import Click, Conversion, ConversionType, Stage

logger = logging.getLogger(__name__)

# Bounded so a batch's statements stay well under both engines' parameter limits.
MAX_BATCH_SIZE = 200
CONVERSION_COLUMNS = tuple(column._meta.db_column_name for column in Conversion._meta.columns)

# The same event reported again: a click's install or registration, or a click's
# deposit with a given transaction id. Deposits without one have no key.
EventKey = tuple[uuid.UUID, ConversionType, str | None]


def event_key(conversion: ConversionInput) -> EventKey | None:
    if conversion.type is not ConversionType.DEPOSIT:
        return (conversion.click_id, conversion.type, None)
    if conversion.transaction_id is None:
        return None
    return (conversion.click_id, conversion.type, conversion.transaction_id)


@dataclass(eq=False)
class _Report:
    conversion: ConversionInput
    record: ConversionRecord
    answer: asyncio.Future[Outcome]
    # Event-loop time by which the caller must have its answer; None: no deadline.
    deadline: float | None


@dataclass
class _ClickState:
    created_at: Any
    stage: int
    player_id: str | None
    changed: bool = False


class GroupCommitter:
    def __init__(self) -> None:
        self._queue: list[_Report] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, conversion: ConversionInput, record: ConversionRecord) -> Outcome:
        loop = asyncio.get_running_loop()
        budget = write_budget(Conversion._meta.db)
        report = _Report(
            conversion,
            record,
            answer=loop.create_future(),
            deadline=None if budget is None else loop.time() + budget,
        )
        self._queue.append(report)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            # The shield: a caller that goes away must not cancel the batch it shares.
            return await asyncio.wait_for(asyncio.shield(report.answer), budget)
        except TimeoutError:
            if report in self._queue:
                # Still queued behind a stalled batch: it never reached the store.
                self._queue.remove(report)
                return StoreUnavailable(reason="TimeoutError")
            # Its batch is under way, with a deadline no later than this report's own.
            return await asyncio.shield(report.answer)

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH_SIZE]
            del self._queue[:MAX_BATCH_SIZE]
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
                    continue
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


def _placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)


async def _write_batch(batch: list[_Report]) -> list[Outcome]:
    engine = Conversion._meta.db
    async with write_transaction(engine):
        click_ids = sorted({report.conversion.click_id for report in batch})
        clicks = await _lock_clicks(click_ids, lock=is_postgres(engine))
        deposit_keys = sorted(
            {
                (report.conversion.click_id, report.conversion.transaction_id)
                for report in batch
                if report.conversion.type is ConversionType.DEPOSIT
                and report.conversion.transaction_id is not None
            }
        )
        recorded = await _recorded_events(click_ids, deposit_keys)  # type: ignore[arg-type]
        # Only a deposit takes a click to the deposit stage, and stages never move back.
        deposited = {id_ for id_, state in clicks.items() if state.stage == Stage.DEPOSIT}

        outcomes: list[Outcome] = []
        new_records: list[ConversionRecord] = []
        for report in batch:
            outcome = _resolve(report, clicks, recorded, deposited)
            outcomes.append(outcome)
            if isinstance(outcome, Recorded) and not outcome.test:
                new_records.append(outcome.conversion)
        if new_records:
            await _insert(new_records)
        await _update_clicks({id_: state for id_, state in clicks.items() if state.changed})
    return outcomes


def _resolve(
    report: _Report,
    clicks: dict[uuid.UUID, _ClickState],
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
    record = replace(
        report.record, is_first_deposit=is_deposit and conversion.click_id not in deposited
    )
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


async def _lock_clicks(click_ids: list[uuid.UUID], *, lock: bool) -> dict[uuid.UUID, _ClickState]:
    # Locked in id order, so two workers' batches cannot deadlock on each other's clicks;
    # the lock serialises reports on one click across workers. SQLite's immediate
    # transaction already holds the whole database.
    rows = await Click.raw(
        "SELECT id, created_at, stage, player_id FROM click "
        f"WHERE id IN ({_placeholders(len(click_ids))}) ORDER BY id"
        + (" FOR UPDATE" if lock else ""),
        *click_ids,
    )
    return {
        row["id"]: _ClickState(row["created_at"], row["stage"], row["player_id"]) for row in rows
    }


async def _recorded_events(
    click_ids: list[uuid.UUID], deposit_keys: list[tuple[uuid.UUID, str]]
) -> dict[EventKey, ConversionRecord]:
    """The stored events the batch's reports may repeat, each found through its own
    index, so the cost does not grow with a click's other deposits.

    The deposits are matched on (click, transaction_id) alone and their type is checked
    here: told `type = 'deposit'` as well, a planner whose statistics predate a burst
    of deposits walks every deposit through the type index instead."""
    statement = (
        f"SELECT * FROM conversion WHERE click IN ({_placeholders(len(click_ids))}) "
        "AND type IN ('install', 'registration')"
    )
    arguments: list[Any] = list(click_ids)
    if deposit_keys:
        pairs = " OR ".join(["(click = {} AND transaction_id = {})"] * len(deposit_keys))
        statement += f" UNION ALL SELECT * FROM conversion WHERE {pairs}"
        arguments += [value for key in deposit_keys for value in key]
    events: dict[EventKey, ConversionRecord] = {}
    for row in await Conversion.raw(statement, *arguments):
        record = ConversionRecord.from_row(row)
        if record.type is ConversionType.DEPOSIT:
            events[(record.click_id, record.type, record.transaction_id)] = record
        else:
            events[(record.click_id, record.type, None)] = record
    return events


async def _insert(records: list[ConversionRecord]) -> None:
    row_placeholders = f"({_placeholders(len(CONVERSION_COLUMNS))})"
    values = [
        row[column]
        for record in records
        for row in [record.as_row()]
        for column in CONVERSION_COLUMNS
    ]
    await Conversion.raw(
        f"INSERT INTO conversion ({', '.join(CONVERSION_COLUMNS)}) "
        f"VALUES {', '.join([row_placeholders] * len(records))}",
        *values,
    )


async def _update_clicks(changed: dict[uuid.UUID, _ClickState]) -> None:
    if not changed:
        return
    # One statement for every changed click. PostgreSQL must be told the parameters'
    # types; SQLite stores UUIDs as text and must not cast them (CAST AS UUID would
    # apply numeric affinity and mangle some).
    if is_postgres(Click._meta.db):
        row = "SELECT {}::uuid AS id, {}::smallint AS stage, {}::varchar AS player_id"
    else:
        row = "SELECT {} AS id, {} AS stage, {} AS player_id"
    rows = " UNION ALL ".join([row] * len(changed))
    await Click.raw(
        f"UPDATE click SET stage = changed.stage, player_id = changed.player_id "
        f"FROM ({rows}) AS changed WHERE click.id = changed.id",
        *[value for id_, state in changed.items() for value in (id_, state.stage, state.player_id)],
    )
