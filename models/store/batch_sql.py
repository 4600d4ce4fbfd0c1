"""The statements of one batch of conversions, for each engine.

A batch reads the clicks it reports on (locked) and the stored events it may
repeat, lets the caller decide every report's outcome (models/conversions/batch.py),
then writes the new conversions and the clicks they advanced. The statement texts
are fixed whatever the batch's size: PostgreSQL receives arrays, so each statement
is parsed and planned once per connection; SQLite runs the whole transaction in one
hop to its writer thread.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

import asyncpg
from piccolo.columns import UUID, BigInt, Boolean, Column, ForeignKey, Text, Timestamptz, Varchar

from models.store.engine import PostgresStore, SQLiteStore, current_engine
from models.store.tables import Click, Conversion

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
)
# A click and the fire terms of its offer, one index look-up per table.
_CLICK_STATE_SELECT = (
    "SELECT click.id, click.created_at, click.stage, click.player_id, offer.fire_policy, "
    "offer_fire_secret.secret AS fire_secret, "
    "offer_fire_secret.previous_secret AS previous_fire_secret, "
    "offer_fire_secret.previous_expires_at AS previous_fire_secret_expires_at "
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
COLUMN_NAMES = tuple(column._meta.db_column_name for column in CONVERSION_COLUMNS)
_POSTGRES_TYPES: dict[type[Column], str] = {
    ForeignKey: "uuid",  # every foreign key here references a UUID primary key
    UUID: "uuid",
    Varchar: "varchar",
    Text: "text",
    Timestamptz: "timestamptz",
    BigInt: "bigint",
    Boolean: "boolean",
}


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
_INSERT_CONVERSIONS = (
    f"INSERT INTO conversion ({', '.join(COLUMN_NAMES)}) SELECT * FROM unnest("
    + ", ".join(
        f"${position}::{_POSTGRES_TYPES[type(column)]}[]"
        for position, column in enumerate(CONVERSION_COLUMNS, start=1)
    )
    + ")"
)


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
# click update rides along in the same round trip.
_INSERT_NEW = f"{_INSERT_CONVERSIONS} ON CONFLICT DO NOTHING RETURNING 1"
_INSERT_COUNTED = f"WITH inserted AS ({_INSERT_NEW}) SELECT count(*) FROM inserted"
_INSERT_COUNTED_AND_UPDATE = (
    f"WITH inserted AS ({_INSERT_NEW}), "
    f"updated AS ({_update_clicks(len(CONVERSION_COLUMNS) + 1)}) "
    "SELECT count(*) FROM inserted"
)


class RepeatFoundError(Exception):
    """A report taken for a new event repeats a stored one: the batch must be redone."""


async def write_conversion_batch(
    click_ids: list[uuid.UUID],
    deposit_keys: list[DepositKey],
    resolve: Resolver[OutcomeT],
    *,
    look_up_repeats: bool,
) -> Resolution[OutcomeT]:
    """One transaction for a batch: its clicks (sorted ids), the deposits it may repeat,
    and `resolve` deciding every outcome in between.

    PostgreSQL skips the look-up of stored events unless `look_up_repeats` (a test
    report writes nothing, so only a look-up can tell it is a repeat), and redoes the
    batch with it when the unique indexes find a repeat. SQLite, which holds the whole
    database's write lock anyway, always looks up.
    """
    engine = current_engine()
    if isinstance(engine, SQLiteStore):
        return await engine.run_in_write_transaction(
            partial(write_sqlite, click_ids=click_ids, deposit_keys=deposit_keys, resolve=resolve)
        )
    try:
        return await _postgres_transaction(
            engine, click_ids, deposit_keys, resolve, look_up_repeats=look_up_repeats
        )
    except RepeatFoundError:
        if look_up_repeats:
            raise
        # A retry of something stored, mostly: undone, and redone knowing the store.
        return await _postgres_transaction(
            engine, click_ids, deposit_keys, resolve, look_up_repeats=True
        )


async def _postgres_transaction(
    engine: PostgresStore,
    click_ids: list[uuid.UUID],
    deposit_keys: list[DepositKey],
    resolve: Resolver[OutcomeT],
    *,
    look_up_repeats: bool,
) -> Resolution[OutcomeT]:
    async with engine.transaction() as transaction:
        connection = transaction.connection
        resolution = await write_postgres(
            connection, click_ids, deposit_keys, resolve, look_up_repeats=look_up_repeats
        )
    return resolution


async def write_postgres(
    connection: asyncpg.Connection,
    click_ids: list[uuid.UUID],
    deposit_keys: list[DepositKey],
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
        # One array per column.
        inserted = [list(column) for column in zip(*new_rows, strict=True)]
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
    f"INSERT INTO conversion ({', '.join(COLUMN_NAMES)}) "
    f"VALUES ({', '.join(['?'] * len(COLUMN_NAMES))})"
)


def _placeholders(count: int) -> str:
    return ", ".join(["?"] * count)


def write_sqlite(
    connection: sqlite3.Connection,
    click_ids: list[uuid.UUID],
    deposit_keys: list[DepositKey],
    resolve: Resolver[OutcomeT],
) -> Resolution[OutcomeT]:
    """The batch's statements, inside the caller's immediate transaction, which already
    holds the database's write lock: no row locks are needed."""
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
    if resolution.new_rows:
        connection.executemany(_SQLITE_INSERT_CONVERSIONS, resolution.new_rows)
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
