"""When the store cannot take a write the pixel says 503 + Retry-After, never 202."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from piccolo.engine.base import Engine

from api.settings import Settings
from models.store.engine import close_store, is_postgres, open_store
from models.store.tables import Click
from models.tracking.offers import create_offer
from tests.support import (
    count_conversions,
    new_click,
    new_link,
    stored_conversions,
    tables_bound_to,
    unreachable_engine,
)


async def test_an_unreachable_store_answers_503_with_retry_after(
    client: httpx.AsyncClient, db: Engine, tmp_path: Path
) -> None:
    click_id = await new_click()
    with tables_bound_to(unreachable_engine(db, tmp_path)):
        fired = await client.get(f"/convert/{click_id}?type=install")
        ready = await client.get("/readyz")
    assert fired.status_code == 503
    assert int(fired.headers["retry-after"]) > 0
    assert fired.json()["errors"][0]["code"] == "store_unavailable"
    assert fired.headers["cache-control"] == "no-store"
    assert "Traceback" not in fired.text
    assert ready.status_code == 503
    assert await count_conversions() == 0
    # And the store is back: the same fire is recorded.
    assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 202


async def test_a_locked_sqlite_database_answers_503_not_500(
    client: httpx.AsyncClient, db: Engine
) -> None:
    if is_postgres(db):
        pytest.skip("SQLite's database lock has no PostgreSQL counterpart")
    click_id = await new_click()
    impatient = Settings(
        database_url=f"sqlite:///{db.path}", sqlite_busy_timeout_seconds=0.1
    ).create_engine()
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with tables_bound_to(impatient):
            response = await client.get(f"/convert/{click_id}?type=install")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert await count_conversions() == 0


async def test_a_stalled_postgres_write_is_503_within_its_deadline_and_leaks_nothing(
    client: httpx.AsyncClient, db: Engine
) -> None:
    if not is_postgres(db):
        pytest.skip("SQLite waits on its busy timeout instead; see the locked-database test")
    click_id = await new_click()
    url = os.environ["DATABASE_URL"]
    settings = Settings(database_url=url, database_pool_max_size=2, store_timeout_seconds=0.3)
    impatient = settings.create_engine()
    await open_store(impatient, pool_min_size=0, pool_max_size=settings.database_pool_max_size)
    # Another session holds the click's row lock, so the pixel's transaction stalls on it.
    holder = await asyncpg.connect(url)
    lock = holder.transaction()
    await lock.start()
    await holder.execute("SELECT id FROM click WHERE id = $1 FOR UPDATE", click_id)
    try:
        with tables_bound_to(impatient):
            started = time.monotonic()
            # More stalled writes than the pool has connections: none may be leaked.
            statuses = [
                (await client.get(f"/convert/{click_id}?type=install")).status_code
                for _ in range(settings.database_pool_max_size + 2)
            ]
            elapsed = time.monotonic() - started
            await lock.rollback()
            recovered = await client.get(f"/convert/{click_id}?type=install")
    finally:
        await holder.close()
        await close_store(impatient)
    assert statuses == [503] * (settings.database_pool_max_size + 2)
    # Far below the 5 s statement timeout: the write deadline, not the server, ended them.
    assert elapsed < settings.database_statement_timeout_seconds
    assert recovered.status_code == 202
    assert len(await stored_conversions(click_id)) == 1


async def test_a_visit_the_store_cannot_take_is_503_and_no_redirect(
    client: httpx.AsyncClient, db: Engine, tmp_path: Path
) -> None:
    offer = await create_offer("Welcome", "https://operator.example/welcome")
    link = (await new_link(offer.id)).id
    # The first visit caches the link's landing URL: the second reaches the click's write.
    assert (await client.get(f"/track/{link}")).status_code == 302
    with tables_bound_to(unreachable_engine(db, tmp_path)):
        refused = await client.get(f"/track/{link}?s1=during")
    assert refused.status_code == 503
    assert "location" not in refused.headers
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["errors"][0]["code"] == "store_unavailable"
    assert not await Click.exists().where(Click.s1 == "during")
    # And the store is back: the next visit is redirected with a stored click.
    assert (await client.get(f"/track/{link}?s1=after")).status_code == 302
    assert await Click.exists().where(Click.s1 == "after")
