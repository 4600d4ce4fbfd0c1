"""The outbox: postback deliveries, written in the transaction of what causes them.

A conversion's deliveries are written by its batch (models/store/batch_sql.py), in the
statement that stores it: no conversion without its deliveries, no delivery without
its conversion. `enqueue_in_postgres_transaction` and `enqueue_in_sqlite_transaction`
are the seam for anything else that causes an event, such as a status change (issue
14): call the one for the engine inside the transaction that makes the change, and the
deliveries commit or roll back with it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg

from models.paging import Cursor
from models.store import outbox_sql
from models.store.reads import TableReads
from models.store.tables import DeliveryStatus, PostbackDelivery, PostbackEvent

STATUS_EVENTS = frozenset({PostbackEvent.APPROVED, PostbackEvent.REJECTED, PostbackEvent.REVERSED})


@dataclass(kw_only=True)
class PostbackDeliveryRecord:
    CURSOR_KIND: ClassVar[str] = "postback_delivery"

    id: uuid.UUID
    rule_id: uuid.UUID
    conversion_id: uuid.UUID
    event: PostbackEvent
    # The URL of the last attempt; None until the first.
    url: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    claimed_until: datetime | None
    claim: uuid.UUID | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(PostbackDelivery, PostbackDeliveryRecord, PostbackDelivery.created_at)


def conditions(
    *,
    partner_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
    conversion_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
) -> list[Any]:
    """postbackDeliveries' filter, each given field narrowing it."""
    found: list[Any] = []
    if partner_id is not None:
        found.append(PostbackDelivery.rule._.partner == partner_id)
    if rule_id is not None:
        found.append(PostbackDelivery.rule == rule_id)
    if conversion_id is not None:
        found.append(PostbackDelivery.conversion == conversion_id)
    if status is not None:
        found.append(PostbackDelivery.status == status.value)
    return found


def _status_event(event: PostbackEvent) -> PostbackEvent:
    if event not in STATUS_EVENTS:
        raise ValueError(f"{event} is written by the conversion's batch, not by this seam")
    return event


async def enqueue_in_postgres_transaction(
    connection: asyncpg.Connection, conversion_ids: Sequence[uuid.UUID], event: PostbackEvent
) -> None:
    """Queue a status `event` of the conversions for every enabled rule of their partners
    that names it, inside the transaction open on `connection`. Queueing one twice is a
    no-op (one delivery per rule, conversion and event)."""
    await outbox_sql.enqueue_postgres(connection, conversion_ids, _status_event(event))


def enqueue_in_sqlite_transaction(
    connection: sqlite3.Connection, conversion_ids: Sequence[uuid.UUID], event: PostbackEvent
) -> None:
    """The same on SQLite: `connection` is the store's writer inside
    `SQLiteStore.run_in_write_transaction`."""
    outbox_sql.enqueue_sqlite(connection, conversion_ids, _status_event(event), datetime.now(UTC))


async def oldest_pending_created_at() -> datetime | None:
    """When the oldest delivery still to be sent was queued; None when none waits."""
    rows = (
        await PostbackDelivery.select(PostbackDelivery.created_at)
        .where(PostbackDelivery.status == DeliveryStatus.PENDING.value)
        .order_by(PostbackDelivery.created_at)
        .limit(1)
    )
    return rows[0]["created_at"] if rows else None
