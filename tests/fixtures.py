"""Fixtures: the migrated store, emptied per test, and the app over HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine.base import Engine
from piccolo.table import sort_table_classes

from api.app import create_app
from api.settings import Settings
from models.database import DatabaseSettings, close_store, is_postgres, open_store
from models.tables import TABLES, Conversion
from tests.conftest import POSTGRES_UNAVAILABLE

ENGINE: Engine = Conversion._meta.db


def _remove_sqlite_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


@pytest.fixture(scope="session")
async def store() -> AsyncIterator[Engine]:
    """A fresh database with every migration applied, opened as the app opens it."""
    if POSTGRES_UNAVAILABLE:
        pytest.skip(POSTGRES_UNAVAILABLE)
    if not is_postgres(ENGINE):
        _remove_sqlite_files(ENGINE.path)
    result = await run_forwards(app_name="models")
    assert result.success, result.message
    await open_store(ENGINE, DatabaseSettings.from_env())
    yield ENGINE
    await close_store(ENGINE)


@pytest.fixture
async def db(store: Engine) -> Engine:
    """The store, emptied: every database test starts from nothing."""
    for table in reversed(sort_table_classes(list(TABLES))):
        await table.delete(force=True)
    return store


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"DATABASE_URL": os.environ["DATABASE_URL"]})


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(db: Engine, app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app over HTTP, in the test's own event loop (the store is already open)."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
