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

# Before anything imports piccolo_conf: never let the suite touch the development database.
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{Path(__file__).parent.parent / '.test-conversions.sqlite'}"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _recreate_postgres_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.endswith("_test"):
        raise RuntimeError(f"refusing to drop {name!r}: test database names end in _test")
    maintenance = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5)
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()


def _prepare_postgres(url: str) -> str | None:
    """Recreate the test database; return why PostgreSQL cannot be used, if it cannot."""
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        return None
    try:
        asyncio.run(_recreate_postgres_database(url))
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL at {url} is not reachable: {error!r}"
        if IN_CI:
            pytest.exit(f"{reason} (CI needs it: a missing PostgreSQL fails the run)", 1)
        return reason
    return None


POSTGRES_UNAVAILABLE = _prepare_postgres(os.environ["DATABASE_URL"])

pytest_plugins = ("tests.fixtures",)
