"""The postback outbox's statements, for each engine: which rules a conversion's event
matches, the enqueue seam for status changes, and the dispatcher's claims and results.

The batch's own delivery statements live in batch_sql.py, built from `matched_deliveries`
here, so the batch and a status change match rules by the same SQL.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from models.store.engine import SQLiteStore, current_engine
from models.store.tables import DeliveryStatus, PostbackDelivery, PostbackEvent

Row = dict[str, Any]

# A conversion's own event for one rule: its type, except that a first deposit is
# FIRST_DEPOSIT for a rule naming it, and a rule naming only DEPOSIT gets every deposit as
# DEPOSIT. NULL: the rule does not want it. `converted` is the conversions' alias.
CONVERSION_EVENT = (
    "CASE WHEN converted.type <> 'deposit' THEN"
    " CASE WHEN rule.events LIKE '%,' || converted.type || ',%' THEN converted.type END"
    " WHEN converted.is_first_deposit AND rule.events LIKE '%,first_deposit,%'"
    " THEN 'first_deposit'"
    " WHEN rule.events LIKE '%,deposit,%' THEN 'deposit' END"
)


def stored_events(events: Sequence[PostbackEvent]) -> str:
    """A rule's events as its column holds them: `,install,first_deposit,`."""
    return "," + "".join(f"{event.value}," for event in sorted(set(events)))


def _status_event(event: PostbackEvent) -> str:
    # Inlined, not bound: a closed set of lowercase names, one fixed statement per event.
    return f"CASE WHEN rule.events LIKE '%,{event.value},%' THEN '{event.value}' END"


def matched_deliveries(source: str, event: str, where: str = "") -> str:
    """(rule, conversion, event) for every enabled rule of a conversion's partner, for all
    its offers or the conversion's, that wants the conversion's `event`. `source` is a
    table or CTE of conversions, named `converted`; a click without a tracking link has no
    partner and matches nothing."""
    return (
        "SELECT * FROM (SELECT rule.id AS rule, converted.id AS conversion, "
        f"{event} AS event FROM {source} AS converted "
        "JOIN click ON click.id = converted.click "
        "JOIN tracking_link ON tracking_link.id = click.tracking_link "
        "JOIN postback_rule AS rule ON rule.partner = tracking_link.partner AND rule.enabled "
        "AND (rule.offer IS NULL OR rule.offer = tracking_link.offer)"
        f"{where}) AS matched WHERE event IS NOT NULL"
    )


_DELIVERY_COLUMNS = "id, rule, conversion, event, status, attempts, next_attempt_at, created_at"


def postgres_enqueue(matched: str, *, now: str) -> str:
    """An insert of every matched delivery, due at once; a repeat is a no-op."""
    return (
        f"INSERT INTO postback_delivery ({_DELIVERY_COLUMNS}) "
        f"SELECT gen_random_uuid(), rule, conversion, event, 'pending', 0, {now}, {now} "
        f"FROM ({matched}) AS wanted ON CONFLICT DO NOTHING"
    )


SQLITE_INSERT_DELIVERY = (
    f"INSERT INTO postback_delivery ({_DELIVERY_COLUMNS}) "
    "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING"
)


def sqlite_enqueue(connection: sqlite3.Connection, matched: Sequence[Any], now: datetime) -> None:
    """Insert the matched (rule, conversion, event) rows; ids come from Python, as SQLite
    has no UUID function."""
    if matched:
        connection.executemany(
            SQLITE_INSERT_DELIVERY,
            [(uuid.uuid4(), row[0], row[1], row[2], now, now) for row in matched],
        )


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


# --- The seam for status changes (issue 14) -------------------------------------------


def _status_matched(event: PostbackEvent, ids: str) -> str:
    """The rules wanting a status `event` of the conversions `converted.id {ids}` names."""
    return matched_deliveries(
        "conversion", _status_event(event), where=f" WHERE converted.id {ids}"
    )


async def enqueue_postgres(
    connection: asyncpg.Connection, conversion_ids: Sequence[uuid.UUID], event: PostbackEvent
) -> None:
    """Queue `event` for the conversions' matching rules, in the transaction open on
    `connection`: it commits or rolls back with whatever the caller wrote there."""
    statement = postgres_enqueue(_status_matched(event, "= ANY($1::uuid[])"), now="now()")
    await connection.execute(statement, list(conversion_ids))


def enqueue_sqlite(
    connection: sqlite3.Connection,
    conversion_ids: Sequence[uuid.UUID],
    event: PostbackEvent,
    now: datetime,
) -> None:
    """The same on SQLite, inside the write transaction open on `connection` (the
    store's writer: SQLiteStore.run_in_write_transaction)."""
    if not conversion_ids:
        return
    statement = _status_matched(event, f"IN ({_placeholders(len(conversion_ids))})")
    sqlite_enqueue(connection, connection.execute(statement, list(conversion_ids)).fetchall(), now)


# --- The dispatcher ---------------------------------------------------------------------


def _numbered(statement: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`...: one text for both engines."""
    counter = iter(range(1, statement.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", statement)


# Due, unclaimed (or claimed by a dispatcher whose lease ran out), of an enabled rule.
_DUE = (
    "SELECT delivery.id FROM postback_delivery AS delivery "
    "JOIN postback_rule AS rule ON rule.id = delivery.rule "
    "WHERE delivery.status = 'pending' AND delivery.next_attempt_at <= ? "
    "AND (delivery.claimed_until IS NULL OR delivery.claimed_until <= ?) AND rule.enabled "
    "ORDER BY delivery.next_attempt_at LIMIT ?"
)
# Rows another transaction is claiming are skipped, not waited for: each goes to one.
_POSTGRES_CLAIM = _numbered(
    f"WITH due AS ({_DUE} FOR UPDATE OF delivery SKIP LOCKED) "
    "UPDATE postback_delivery SET claimed_until = ?, claim = ? FROM due "
    "WHERE postback_delivery.id = due.id"
)
# What a claimed delivery's URL is rendered from.
_CLAIMED = (
    "SELECT delivery.id, delivery.event, delivery.attempts, delivery.rule AS rule_id, "
    "rule.url_template, rule.partner AS partner_id, conversion.id AS conversion_id, "
    "conversion.type, conversion.transaction_id, conversion.amount_minor, "
    "conversion.currency, conversion.occurred_at, conversion.status, click.id AS click_id, "
    "click.s1, click.s2, click.s3, click.s4, click.s5, "
    "tracking_link.id AS tracking_link_id, tracking_link.offer AS offer_id "
    "FROM postback_delivery AS delivery "
    "JOIN postback_rule AS rule ON rule.id = delivery.rule "
    "JOIN conversion ON conversion.id = delivery.conversion "
    "JOIN click ON click.id = conversion.click "
    "LEFT JOIN tracking_link ON tracking_link.id = click.tracking_link "
    "WHERE delivery.claim = ?"
)
_FINISH = (
    "UPDATE postback_delivery SET status = ?, attempts = attempts + 1, "
    "last_status_code = ?, last_error = ?, next_attempt_at = ?, delivered_at = ?, "
    "finished_at = ?, url = ?, claimed_until = NULL, claim = NULL "
    "WHERE id = ? AND claim = ?"
)
# A rule whose last RULE_FAILURE_LIMIT finished deliveries all failed is disabled.
_DISABLE_FAILING_RULE = (
    "UPDATE postback_rule SET enabled = FALSE, disabled_reason = ? "
    "WHERE id = ? AND enabled AND ? = (SELECT count(*) FROM "
    "(SELECT status FROM postback_delivery WHERE rule = ? AND finished_at IS NOT NULL "
    "ORDER BY finished_at DESC LIMIT ?) AS last WHERE status = 'failed')"
)


# Hand back what a stopping dispatcher claimed and did not finish.
_RELEASE = "UPDATE postback_delivery SET claimed_until = NULL, claim = NULL WHERE claim = ?"


@dataclass(frozen=True)
class Attempt:
    """How one attempt at a delivery ended, as the dispatcher stores it."""

    delivery_id: uuid.UUID
    rule_id: uuid.UUID
    claim: uuid.UUID
    status: DeliveryStatus
    url: str | None
    status_code: int | None
    error: str | None
    next_attempt_at: datetime
    finished_at: datetime | None


async def claim_due(
    *, now: datetime, claimed_until: datetime, limit: int, claim: uuid.UUID
) -> list[Row]:
    """Claim up to `limit` due deliveries until `claimed_until`; their rendering data.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent claims split the due rows. SQLite:
    the claim runs in a write transaction on the store's writer, which holds the
    database's write lock (and the host's writers' turn) throughout, so claims of several
    processes follow each other. Either way a claimed row is not due to anyone else until
    its lease runs out, which is what lets a crashed worker's deliveries be tried again.
    """
    engine = current_engine()
    if isinstance(engine, SQLiteStore):

        def work(connection: sqlite3.Connection) -> list[Row]:
            ids = [row[0] for row in connection.execute(_DUE, (now, now, limit))]
            if not ids:
                return []
            connection.execute(
                "UPDATE postback_delivery SET claimed_until = ?, claim = ? "
                f"WHERE id IN ({_placeholders(len(ids))})",
                [claimed_until, claim, *ids],
            )
            return [dict(row) for row in connection.execute(_CLAIMED, (claim,))]

        return await engine.run_in_write_transaction(work)
    async with engine.transaction() as transaction:
        connection: asyncpg.Connection = transaction.connection
        await connection.execute(_POSTGRES_CLAIM, now, now, limit, claimed_until, claim)
        rows = await connection.fetch(_numbered(_CLAIMED), claim)
    return [dict(row) for row in rows]


async def record_attempt(attempt: Attempt, *, failure_limit: int, disabled_reason: str) -> bool:
    """Store how an attempt ended, if the claim still holds; after a failure, disable the
    rule if its last `failure_limit` finished deliveries all failed. False when the claim
    had run out (another dispatcher may have the delivery now): nothing is stored."""
    delivered_at = attempt.finished_at if attempt.status is DeliveryStatus.DELIVERED else None
    finish = (
        attempt.status.value,
        attempt.status_code,
        attempt.error,
        attempt.next_attempt_at,
        delivered_at,
        attempt.finished_at,
        attempt.url,
        attempt.delivery_id,
        attempt.claim,
    )
    disable = (
        disabled_reason,
        attempt.rule_id,
        failure_limit,
        attempt.rule_id,
        failure_limit,
    )
    failed = attempt.status is DeliveryStatus.FAILED
    engine = current_engine()
    if isinstance(engine, SQLiteStore):

        def work(connection: sqlite3.Connection) -> bool:
            if connection.execute(_FINISH, finish).rowcount != 1:
                return False
            if failed:
                connection.execute(_DISABLE_FAILING_RULE, disable)
            return True

        return await engine.run_in_write_transaction(work)
    async with engine.transaction() as transaction:
        connection: asyncpg.Connection = transaction.connection
        if await connection.execute(_numbered(_FINISH), *finish) != "UPDATE 1":
            return False
        if failed:
            await connection.execute(_numbered(_DISABLE_FAILING_RULE), *disable)
    return True


async def release_claim(claim: uuid.UUID) -> None:
    """Make a claim's unfinished deliveries due to any dispatcher at once, rather than
    when its lease runs out: what a dispatcher that stops cleanly does."""
    engine = current_engine()
    if isinstance(engine, SQLiteStore):
        await engine.run_in_write_transaction(
            lambda connection: connection.execute(_RELEASE, (claim,))
        )
        return
    async with engine.transaction() as transaction:
        await transaction.connection.execute(_numbered(_RELEASE), claim)


# A due delivery exists: the claim's condition, as Piccolo's raw placeholders.
_ANY_DUE = (
    "SELECT EXISTS ("
    + _DUE.replace("SELECT delivery.id", "SELECT 1").replace("?", "{}")
    + ") AS due"
)


async def any_due(now: datetime) -> bool:
    """Whether a claim would find anything: a plain read, so an idle dispatcher never
    takes SQLite's write lock or a PostgreSQL row lock."""
    found = await PostbackDelivery.raw(_ANY_DUE, now, now, 1)
    return bool(found[0]["due"])
