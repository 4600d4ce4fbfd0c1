"""One suite, both engines: DATABASE_URL picks the store (see the Makefile's test targets).

This file prepares the database before anything imports piccolo_conf, because
Piccolo's engine connects as soon as it is constructed; the fixtures, which import
the app, live in tests/fixtures.py.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _this_runs_own(url: str) -> str:
    """The URL of a database for this test run alone, so parallel runs never collide."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return f"{url}.{os.getpid()}"
    return urlunsplit(parts._replace(path=f"{parts.path}_{os.getpid()}"))


# Before anything imports piccolo_conf: never let the suite touch the development database.
os.environ["DATABASE_URL"] = _this_runs_own(
    os.environ.get(
        "DATABASE_URL", f"sqlite:///{Path(__file__).parent.parent / '.test-conversions.sqlite'}"
    )
)


async def _drop_postgres_database(url: str, *, create_again: bool) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "_test_" not in name:
        raise RuntimeError(f"refusing to drop {name!r}: not a test database")
    maintenance = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5)
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create_again:
            await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in {"postgres", "postgresql"}


def _prepare_postgres(url: str) -> str | None:
    """Recreate the test database; return why PostgreSQL cannot be used, if it cannot."""
    if not is_postgres_url(url):
        return None
    try:
        asyncio.run(_drop_postgres_database(url, create_again=True))
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL at {url} is not reachable: {error!r}"
        if IN_CI:
            pytest.exit(f"{reason} (CI needs it: a missing PostgreSQL fails the run)", 1)
        return reason
    return None


POSTGRES_UNAVAILABLE = _prepare_postgres(os.environ["DATABASE_URL"])


@pytest.fixture(scope="session")
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used outside CI, or None when it can (or is not asked for)."""
    return POSTGRES_UNAVAILABLE


pytest_plugins = ("tests.fixtures",)


def pytest_unconfigure(config: pytest.Config) -> None:
    url = os.environ["DATABASE_URL"]
    if is_postgres_url(url) and not POSTGRES_UNAVAILABLE:
        asyncio.run(_drop_postgres_database(url, create_again=False))
    elif not is_postgres_url(url):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
