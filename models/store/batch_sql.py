"""The statements of one batch of conversions, for each engine.

A batch reads the clicks it reports on (locked) and the stored events it may
repeat, lets the caller decide every report's outcome (models/conversions/batch.py),
then writes the new conversions, the clicks they advanced and the postback deliveries
the new conversions' partners' rules want (the outbox). The statement texts
are fixed whatever the batch's size: PostgreSQL receives arrays, so each statement
is parsed and planned once per connection; SQLite runs the whole transaction in one
hop to its writer thread.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import asyncpg
from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    Column,
    ForeignKey,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)

from models.store.engine import PostgresStore, SQLiteStore, current_engine
from models.store.notifications import postgres_notify
from models.store.outbox_sql import (
    CONVERSION_EVENT,
    matched_deliveries,
    postgres_enqueue,
    sqlite_enqueue,
)
from models.store.tables import Click, Conversion, FireRejection

OutcomeT = TypeVar("OutcomeT")
# A click's deposit with a given transaction id, the one kind of event a batch must
# look up by a value of its own besides the click.
DepositKey = tuple[uuid.UUID, str]
Row = Mapping[str, Any]


@dataclass
class ClickState:
    created_at: datetime
    stage: int
    player_id: str | None
    # The fire terms of the click's offer; all None for a click without a tracking link.
    fire_policy: str | None
    fire_secret: str | None
    previous_fire_secret: str | None
    previous_fire_secret_expires_at: datetime | None
    # Whether the offer holds deposits (they arrive PENDING); None without a tracking link.
    hold_deposits: bool | None
    # The click's tracking link's offer and partner; None without a link.
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    changed: bool = False

    @classmethod
    def of(cls, row: Row) -> ClickState:
        return cls(*(row[name] for name in _CLICK_STATE))


# The columns of a click's state, as _CLICK_STATE_SELECT names them.
_CLICK_STATE = (
    "created_at",
    "stage",
    "player_id",
    "fire_policy",
    "fire_secret",
    "previous_fire_secret",
    "previous_fire_secret_expires_at",
    "hold_deposits",
    "offer_id",
    "partner_id",
)
# A click, the fire terms of its offer and whether it holds deposits, one index look-up
# per table.
_CLICK_STATE_SELECT = (
    "SELECT click.id, click.created_at, click.stage, click.player_id, offer.fire_policy, "
    "offer.hold_deposits, "
    "offer_fire_secret.secret AS fire_secret, "
    "offer_fire_secret.previous_secret AS previous_fire_secret, "
    "offer_fire_secret.previous_expires_at AS previous_fire_secret_expires_at, "
    "tracking_link.offer AS offer_id, tracking_link.partner AS partner_id "
    "FROM click LEFT JOIN tracking_link ON tracking_link.id = click.tracking_link "
    "LEFT JOIN offer ON offer.id = tracking_link.offer "
    "LEFT JOIN offer_fire_secret ON offer_fire_secret.offer = offer.id "
)


@dataclass
class Resolution(Generic[OutcomeT]):
    """What a batch answers and what it must write."""

    outcomes: list[OutcomeT]
    # The new conversions' values, in the conversion table's column order.
    new_rows: list[list[Any]]
    changed_clicks: dict[uuid.UUID, ClickState]


# Given the batch's clicks (locked) and the stored conversions its reports may repeat.
Resolver = Callable[[dict[uuid.UUID, ClickState], Sequence[Row]], Resolution[OutcomeT]]

CONVERSION_COLUMNS: tuple[Column, ...] = tuple(Conversion._meta.columns)
CLICK_COLUMNS: tuple[Column, ...] = tuple(Click._meta.columns)
REJECTION_COLUMNS: tuple[Column, ...] = tuple(FireRejection._meta.columns)
_POSTGRES_TYPES: dict[type[Column], str] = {
    ForeignKey: "uuid",  # every foreign key here references a UUID primary key
    UUID: "uuid",
    Varchar: "varchar",
    Text: "text",
    Timestamptz: "timestamptz",
    BigInt: "bigint",
    Boolean: "boolean",
    SmallInt: "smallint",
}


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


def _column_names(columns: tuple[Column, ...]) -> str:
    return ", ".join(column._meta.db_column_name for column in columns)


def _unnest_insert(table: str, columns: tuple[Column, ...]) -> str:
    """An insert of one array per column: one statement text whatever the row count."""
    arrays = ", ".join(
        f"${position}::{_POSTGRES_TYPES[type(column)]}[]"
        for position, column in enumerate(columns, start=1)
    )
    return f"INSERT INTO {table} ({_column_names(columns)}) SELECT * FROM unnest({arrays})"


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column, as the unnest inserts take them."""
    return [list(column) for column in zip(*rows, strict=True)]


# --- PostgreSQL ---------------------------------------------------------------

# Locked in id order, so two workers' batches cannot deadlock on each other's clicks;
# the lock serialises reports on one click across workers.
_LOCK_CLICKS = (
    f"{_CLICK_STATE_SELECT} WHERE click.id = ANY($1::uuid[]) ORDER BY click.id FOR UPDATE OF click"
)
# Each event is found through its own unique index, so the cost does not grow with a
# click's other conversions: the conditions repeat the partial indexes' own, which is
# what lets the planner use them whatever its statistics say.
_RECORDED_EVENTS = (
    "SELECT * FROM conversion WHERE click = ANY($1::uuid[]) "
    "AND type IN ('install', 'registration') "
    "UNION ALL SELECT conversion.* FROM conversion "
    "JOIN unnest($2::uuid[], $3::varchar[]) AS wanted (click, transaction_id) "
    "ON conversion.click = wanted.click AND conversion.transaction_id = wanted.transaction_id "
    "AND conversion.type = 'deposit'"
)
_INSERT_CONVERSIONS = _unnest_insert("conversion", CONVERSION_COLUMNS)
_INSERT_CLICKS = _unnest_insert("click", CLICK_COLUMNS)
# A batch retried report by report may meet its rejected fires already stored.
_INSERT_REJECTIONS = f"{_unnest_insert('fire_rejection', REJECTION_COLUMNS)} ON CONFLICT DO NOTHING"


def _update_clicks(first_parameter: int) -> str:
    ids, stages, player_ids = (f"${first_parameter + offset}" for offset in range(3))
    return (
        "UPDATE click SET stage = changed.stage, player_id = changed.player_id "
        f"FROM unnest({ids}::uuid[], {stages}::smallint[], {player_ids}::varchar[]) "
        "AS changed (id, stage, player_id) WHERE click.id = changed.id"
    )


_UPDATE_CLICKS = _update_clicks(1)
# Rows that would repeat a stored event are skipped, and the count of rows written
# tells whether any was: every statement costs a loopback send on each side, so the
# click update and the outbox ride along in the same round trip. The outbox's insert
# joins the conversions just written to their partners' enabled rules: no rules, no rows,
# and no statement of its own either way.
_INSERT_NEW = (
    f"{_INSERT_CONVERSIONS} ON CONFLICT DO NOTHING RETURNING id, click, type, is_first_deposit"
)
_QUEUE_DELIVERIES = postgres_enqueue(matched_deliveries("inserted", CONVERSION_EVENT), now="now()")
# The live feed's notices (models/store/notifications.py) ride the same statement, sent on
# commit. A query CTE runs only when read, hence the join with its (one-row) count.
_COUNT_NOTIFIED = (
    f", notified AS ({postgres_notify('inserted')}) "
    "SELECT count(*) FROM inserted CROSS JOIN (SELECT count(*) FROM notified) AS notices"
)
_INSERT_COUNTED = (
    f"WITH inserted AS ({_INSERT_NEW}), queued AS ({_QUEUE_DELIVERIES}){_COUNT_NOTIFIED}"
)
_INSERT_COUNTED_AND_UPDATE = (
    f"WITH inserted AS ({_INSERT_NEW}), queued AS ({_QUEUE_DELIVERIES}), "
    f"updated AS ({_update_clicks(len(CONVERSION_COLUMNS) + 1)}){_COUNT_NOTIFIED}"
)


class RepeatFoundError(Exception):
    """A report taken for a new event repeats a stored one: the batch must be redone."""


@dataclass(frozen=True)
class Batch:
    """What one transaction writes first and what its reports look at."""

    # New clicks' values, in the click table's column order: stored before anything
    # else, so a report in the same batch finds its click.
    new_clicks: list[list[Any]]
    # The clicks the batch's reports name, sorted, and the deposits they may repeat.
    click_ids: list[uuid.UUID]
    deposit_keys: list[DepositKey]
    # Rejected fires to log (models/rejections/), in the fire_rejection table's column
    # order: they ride the batch and change nothing else in it.
    rejections: list[list[Any]] = field(default_factory=list)


async def write_batch(
    batch: Batch, resolve: Resolver[OutcomeT], *, look_up_repeats: bool
) -> Resolution[OutcomeT]:
    """One transaction for a batch: its new clicks, then its reports' clicks, the
    deposits they may repeat, and `resolve` deciding every outcome in between.

    PostgreSQL skips the look-up of stored events unless `look_up_repeats` (a test
    report writes nothing, so only a look-up can tell it is a repeat), and redoes the
    batch with it when the unique indexes find a repeat. SQLite, which holds the whole
    database's write lock anyway, always looks up.
    """
    engine = current_engine()
    if isinstance(engine, SQLiteStore):
        return await engine.run_in_write_transaction(
            partial(write_sqlite, batch=batch, resolve=resolve)
        )
    if not batch.click_ids:
        # New clicks alone (the tracking link's batches): one statement, which commits
        # on its own, without BEGIN and COMMIT round trips. Rejected fires are a log,
        # not a promise: theirs commit apart, first, so that a failure of the clicks'
        # statement, retried click by click, meets no click already stored.
        async with engine.autocommit_connection() as connection:
            if batch.rejections:
                await connection.execute(_INSERT_REJECTIONS, *_columns(batch.rejections))
            if batch.new_clicks:
                await connection.execute(_INSERT_CLICKS, *_columns(batch.new_clicks))
        return Resolution([], [], {})
    try:
        return await _postgres_transaction(engine, batch, resolve, look_up_repeats=look_up_repeats)
    except RepeatFoundError:
        if look_up_repeats:
            raise
        # A retry of something stored, mostly: undone, and redone knowing the store.
        return await _postgres_transaction(engine, batch, resolve, look_up_repeats=True)


async def _postgres_transaction(
    engine: PostgresStore, batch: Batch, resolve: Resolver[OutcomeT], *, look_up_repeats: bool
) -> Resolution[OutcomeT]:
    async with engine.transaction() as transaction:
        connection = transaction.connection
        resolution = await write_postgres(
            connection, batch, resolve, look_up_repeats=look_up_repeats
        )
    return resolution


async def write_postgres(
    connection: asyncpg.Connection,
    batch: Batch,
    resolve: Resolver[OutcomeT],
    *,
    look_up_repeats: bool,
) -> Resolution[OutcomeT]:
    """The batch's statements, inside the caller's transaction on `connection`.

    Without `look_up_repeats` the batch takes every event it has not seen for new and
    lets the unique indexes tell otherwise, raising RepeatFoundError (the caller rolls
    back and redoes the batch with look-ups). Repeats are the exception, so most
    batches skip the look-up, and no planner statistics can turn it into a scan.
    """
    if batch.new_clicks:
        await connection.execute(_INSERT_CLICKS, *_columns(batch.new_clicks))
    if batch.rejections:
        await connection.execute(_INSERT_REJECTIONS, *_columns(batch.rejections))
    click_ids, deposit_keys = batch.click_ids, batch.deposit_keys
    clicks = {
        row["id"]: ClickState.of(row) for row in await connection.fetch(_LOCK_CLICKS, click_ids)
    }
    recorded: Sequence[Row] = []
    if look_up_repeats:
        recorded = await connection.fetch(
            _RECORDED_EVENTS,
            click_ids,
            [click_id for click_id, _ in deposit_keys],
            [transaction_id for _, transaction_id in deposit_keys],
        )
    resolution = resolve(clicks, recorded)
    changed = resolution.changed_clicks
    updated = (
        [
            list(changed),
            [state.stage for state in changed.values()],
            [state.player_id for state in changed.values()],
        ]
        if changed
        else []
    )
    if new_rows := resolution.new_rows:
        inserted = _columns(new_rows)
        if updated:
            written = await connection.fetchval(_INSERT_COUNTED_AND_UPDATE, *inserted, *updated)
        else:
            written = await connection.fetchval(_INSERT_COUNTED, *inserted)
        if written != len(new_rows):
            raise RepeatFoundError(f"{len(new_rows) - written} of the batch's events are stored")
    elif updated:
        await connection.execute(_UPDATE_CLICKS, *updated)
    return resolution


# --- SQLite -------------------------------------------------------------------

_SQLITE_INSERT_CONVERSIONS = (
    f"INSERT INTO conversion ({_column_names(CONVERSION_COLUMNS)}) "
    f"VALUES ({_placeholders(len(CONVERSION_COLUMNS))})"
)
# Columns compare into SQL conditions, so the position is found by name.
_CONVERSION_ID = [column._meta.name for column in CONVERSION_COLUMNS].index("id")
_SQLITE_INSERT_CLICKS = (
    f"INSERT INTO click ({_column_names(CLICK_COLUMNS)}) "
    f"VALUES ({_placeholders(len(CLICK_COLUMNS))})"
)
_SQLITE_INSERT_REJECTIONS = (
    f"INSERT INTO fire_rejection ({_column_names(REJECTION_COLUMNS)}) "
    f"VALUES ({_placeholders(len(REJECTION_COLUMNS))}) ON CONFLICT DO NOTHING"
)


def write_sqlite(
    connection: sqlite3.Connection, batch: Batch, resolve: Resolver[OutcomeT]
) -> Resolution[OutcomeT]:
    """The batch's statements, inside the caller's immediate transaction, which already
    holds the database's write lock: no row locks are needed."""
    if batch.new_clicks:
        connection.executemany(_SQLITE_INSERT_CLICKS, batch.new_clicks)
    if batch.rejections:
        connection.executemany(_SQLITE_INSERT_REJECTIONS, batch.rejections)
    if not batch.click_ids:
        return Resolution([], [], {})  # new clicks alone: nothing to look up or decide
    click_ids, deposit_keys = batch.click_ids, batch.deposit_keys
    clicks = {
        row["id"]: ClickState.of(row)
        for row in connection.execute(
            f"{_CLICK_STATE_SELECT} WHERE click.id IN ({_placeholders(len(click_ids))})", click_ids
        )
    }
    statement = (
        f"SELECT * FROM conversion WHERE click IN ({_placeholders(len(click_ids))}) "
        "AND type IN ('install', 'registration')"
    )
    arguments: list[Any] = list(click_ids)
    if deposit_keys:
        pairs = " OR ".join(
            ["(click = ? AND transaction_id = ? AND type = 'deposit')"] * len(deposit_keys)
        )
        statement += f" UNION ALL SELECT * FROM conversion WHERE {pairs}"
        arguments += [value for key in deposit_keys for value in key]
    resolution = resolve(clicks, connection.execute(statement, arguments).fetchall())
    if new_rows := resolution.new_rows:
        connection.executemany(_SQLITE_INSERT_CONVERSIONS, new_rows)
        # The outbox: one read of the partners' enabled rules, and inserts only for matches.
        new_ids = [row[_CONVERSION_ID] for row in new_rows]
        matched = connection.execute(
            matched_deliveries(
                "conversion",
                CONVERSION_EVENT,
                where=f" WHERE converted.id IN ({_placeholders(len(new_ids))})",
            ),
            new_ids,
        ).fetchall()
        sqlite_enqueue(connection, matched, datetime.now(UTC))
    if changed := resolution.changed_clicks:
        connection.executemany(
            "UPDATE click SET stage = ?, player_id = ? WHERE id = ?",
            [(state.stage, state.player_id, id_) for id_, state in changed.items()],
        )
    return resolution


# --- Either engine ------------------------------------------------------------


async def read_click_state(click_id: uuid.UUID) -> ClickState | None:
    """A click's state outside any batch, unlocked: what an invalid fire is judged by."""
    rows = await Click.raw(f"{_CLICK_STATE_SELECT} WHERE click.id = {{}}", click_id)
    return ClickState.of(rows[0]) if rows else None
