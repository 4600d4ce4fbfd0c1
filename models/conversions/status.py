"""Conversion statuses: approve, reject and reverse conversions, and their history.

A conversion is recorded APPROVED, or PENDING for a deposit on an offer that holds
deposits (models/conversions/batch.py decides it as the deposit arrives). After that
only `set_conversion_status` moves it, along `ALLOWED`; each move writes a history entry
and queues the matching postback event (APPROVED, REJECTED, REVERSED) in the
transaction that makes it (models/store/status_sql.py). A status never touches the
first-deposit flag, nor what counts as a repeat: a rejected deposit's retry is still a
repeat.

No `from __future__ import annotations`: GraphQL's StatusChange is built on the record
here and reads its annotations as real types.
"""

import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

import asyncpg

from models.conversions.queries import READS
from models.conversions.records import ConversionRecord
from models.errors import FieldError, InvalidInputError, text_errors
from models.partners.access import Access
from models.postbacks.outbox import (
    enqueue_in_postgres_transaction,
    enqueue_in_sqlite_transaction,
)
from models.store.rows import RowMapping
from models.store.status_sql import Decision, NewStatus, Row, write_status_change
from models.store.tables import ConversionStatus, ConversionStatusChange, PostbackEvent

# One request's worth: a back office's page of chargebacks, not a whole backfill.
MAX_IDS = 1000
MAX_REASON_LENGTH = 1000

# Every allowed move; REVERSED (a chargeback) is final.
ALLOWED: dict[ConversionStatus, frozenset[ConversionStatus]] = {
    ConversionStatus.PENDING: frozenset({ConversionStatus.APPROVED, ConversionStatus.REJECTED}),
    ConversionStatus.APPROVED: frozenset({ConversionStatus.REJECTED, ConversionStatus.REVERSED}),
    ConversionStatus.REJECTED: frozenset({ConversionStatus.APPROVED}),
    ConversionStatus.REVERSED: frozenset(),
}
# The postback event a move to each status queues. No move leads to PENDING.
EVENTS: dict[ConversionStatus, PostbackEvent] = {
    ConversionStatus.APPROVED: PostbackEvent.APPROVED,
    ConversionStatus.REJECTED: PostbackEvent.REJECTED,
    ConversionStatus.REVERSED: PostbackEvent.REVERSED,
}


@dataclass(frozen=True)
class StatusChanged:
    """The conversion is in the asked status now: moved there, or already there (then
    without a new history entry)."""

    conversion: ConversionRecord


@dataclass(frozen=True)
class ConversionNotFound:
    id: uuid.UUID


@dataclass(frozen=True)
class TransitionNotAllowed:
    """The move from the conversion's status to the asked one is not in `ALLOWED`."""

    conversion: ConversionRecord
    from_status: ConversionStatus
    to_status: ConversionStatus


StatusOutcome = StatusChanged | ConversionNotFound | TransitionNotAllowed


@dataclass(kw_only=True)
class StatusChangeRecord:
    """One entry of a conversion's status history."""

    id: uuid.UUID
    conversion_id: uuid.UUID
    from_status: ConversionStatus
    to_status: ConversionStatus
    reason: str | None
    changed_at: datetime
    # The name of the API key that made the change.
    changed_by: str


HISTORY = RowMapping(ConversionStatusChange, StatusChangeRecord)


def _input_errors(ids: Sequence[uuid.UUID], reason: str | None) -> list[FieldError]:
    errors = text_errors("reason", reason, max_length=MAX_REASON_LENGTH)
    if len(ids) > MAX_IDS:
        message = f"{{ids}} may name at most {MAX_IDS} conversions, not {len(ids)}"
        errors.insert(0, FieldError("ids", "too_many", message))
    return errors


def _decide(
    ids: Sequence[uuid.UUID],
    status: ConversionStatus,
    stored: dict[uuid.UUID, Row],
) -> Decision[StatusOutcome]:
    """Every id's outcome, in order, as if each were changed after the ones before it: a
    repeated id finds the status its first mention set, and is `StatusChanged` again
    without another history entry."""
    current = {id_: READS.mapping.record(row) for id_, row in stored.items()}
    outcomes: list[StatusOutcome] = []
    changed: dict[uuid.UUID, str] = {}
    for id_ in ids:
        record = current.get(id_)
        if record is None:
            outcomes.append(ConversionNotFound(id_))
        elif record.status is status:
            outcomes.append(StatusChanged(record))
        elif status in ALLOWED[record.status]:
            changed[id_] = record.status.value
            current[id_] = replace(record, status=status)
            outcomes.append(StatusChanged(current[id_]))
        else:
            outcomes.append(TransitionNotAllowed(record, record.status, status))
    return Decision(outcomes, changed)


async def set_conversion_status(
    ids: Sequence[uuid.UUID],
    status: ConversionStatus,
    reason: str | None,
    *,
    changed_by: str,
) -> list[StatusOutcome]:
    """Move the conversions `ids` names to `status`: one outcome per id, in order.

    The operator's own action (admin keys): it sees every conversion. Raises
    InvalidInputError naming every bad field (more than MAX_IDS ids, a bad reason)
    before anything is read or changed."""
    reason = reason.strip() if reason else None
    if errors := _input_errors(ids, reason):
        raise InvalidInputError(errors)
    if not ids:
        return []
    return await write_status_change(
        ids,
        NewStatus(status.value, reason or None, changed_by),
        partial(_decide, ids, status),
        enqueue_postgres=partial(_enqueue_postgres, event=EVENTS.get(status)),
        enqueue_sqlite=partial(_enqueue_sqlite, event=EVENTS.get(status)),
    )


async def _enqueue_postgres(
    connection: asyncpg.Connection,
    conversion_ids: list[uuid.UUID],
    *,
    event: PostbackEvent | None,
) -> None:
    # Only a move writes, and no move leads to PENDING, the one status without an event.
    assert event is not None
    await enqueue_in_postgres_transaction(connection, conversion_ids, event)


def _enqueue_sqlite(
    connection: sqlite3.Connection, conversion_ids: list[uuid.UUID], *, event: PostbackEvent | None
) -> None:
    assert event is not None
    enqueue_in_sqlite_transaction(connection, conversion_ids, event)


async def history_of_conversions(
    access: Access, conversion_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[StatusChangeRecord]]:
    """Each conversion's status changes, oldest first, in one statement for all of them."""
    by_conversion: dict[uuid.UUID, list[StatusChangeRecord]] = defaultdict(list)
    if conversion_ids:
        query = ConversionStatusChange.select().where(
            ConversionStatusChange.conversion.is_in(list(conversion_ids))
        )
        for condition in access.conditions(ConversionStatusChange):
            query = query.where(condition)
        rows = await query.order_by(ConversionStatusChange.changed_at, ConversionStatusChange.id)
        for change in map(HISTORY.record, rows):
            by_conversion[change.conversion_id].append(change)
    return {conversion_id: by_conversion[conversion_id] for conversion_id in conversion_ids}
