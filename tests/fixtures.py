"""Fixtures: the migrated store, emptied per test, and the app over HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine.base import Engine
from piccolo.table import sort_table_classes

from api.app import create_app
from api.settings import Settings
from models.store.engine import close_store, open_store
from models.store.piccolo_app import APP_NAME
from models.store.tables import TABLES, Conversion

ENGINE: Engine = Conversion._meta.db


@pytest.fixture(scope="session")
async def store(postgres_unavailable: str | None) -> AsyncIterator[Engine]:
    """A fresh database with every migration applied, opened as the app opens it."""
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    result = await run_forwards(app_name=APP_NAME)
    assert result.success, result.message
    settings = Settings.from_env()
    await open_store(
        ENGINE,
        pool_min_size=settings.database_pool_min_size,
        pool_max_size=settings.database_pool_max_size,
    )
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
