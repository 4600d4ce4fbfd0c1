"""SQLite's writers take turns (models/store/engine.py): the worker processes' writers
wait for a `flock` beside the database instead of sleeping in SQLite's busy handler,
and give up as SQLite would when their turn does not come within the busy timeout."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from piccolo.engine.base import Engine

from api.settings import Settings
from models.store.engine import SQLiteStore
from tests.support import count_conversions, new_click, tables_bound_to


@pytest.fixture
def sqlite_store(db: Engine) -> SQLiteStore:
    if not isinstance(db, SQLiteStore):
        pytest.skip("the writers' turn is SQLite's: PostgreSQL locks rows")
    return db


@contextmanager
def turn_held_elsewhere(store: SQLiteStore) -> Iterator[None]:
    """The turn, held as another worker process's writer would hold it."""
    turn = os.open(store.writers_turn_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(turn, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(turn, fcntl.LOCK_UN)
        os.close(turn)


def insert_marker(connection: sqlite3.Connection) -> int:
    connection.execute("CREATE TABLE IF NOT EXISTS turn_marker (n INTEGER)")
    connection.execute("INSERT INTO turn_marker VALUES (1)")
    return int(connection.execute("SELECT count(*) FROM turn_marker").fetchone()[0])


async def test_a_writer_waits_for_its_turn_then_writes(sqlite_store: SQLiteStore) -> None:
    try:
        with turn_held_elsewhere(sqlite_store):
            write = asyncio.ensure_future(sqlite_store.run_in_write_transaction(insert_marker))
            await asyncio.sleep(0.3)
            assert not write.done()  # the turn is taken: nothing is written yet
        assert await asyncio.wait_for(write, timeout=5) == 1
    finally:
        await sqlite_store.run_in_write_transaction(
            lambda connection: connection.execute("DROP TABLE IF EXISTS turn_marker")
        )


async def test_a_turn_that_never_comes_is_503_after_the_busy_timeout(
    client: httpx.AsyncClient, sqlite_store: SQLiteStore
) -> None:
    click_id = await new_click()
    impatient = Settings(
        database_url=f"sqlite:///{sqlite_store.path}", sqlite_busy_timeout_seconds=0.2
    ).create_engine()
    assert isinstance(impatient, SQLiteStore)
    try:
        with turn_held_elsewhere(sqlite_store), tables_bound_to(impatient):
            response = await client.get(f"/convert/{click_id}?type=install")
    finally:
        await impatient.close_writer()
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert await count_conversions() == 0
    assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 202
