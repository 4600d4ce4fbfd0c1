"""The partners migration on a store that predates it: every distinct partner reference
becomes a partner, its links join it, and those links keep working.

A database of its own, migrated to the migration before partners with Piccolo's
command, given links as the old schema held them, then migrated with
`conversions migrate` as a deploy would.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from piccolo.engine.base import Engine

from api.settings import Settings
from models.keys import Scope
from models.store.engine import Store, close_store, is_postgres, open_store
from models.store.tables import Click, Partner, TrackingLink
from tests.graphql_client import graphql_as
from tests.support import tables_bound_to

BEFORE_PARTNERS = "2026-12-02T04:09:30:000000"
BIN = Path(sys.executable).parent
OFFER = "0a000000-0000-4000-8000-000000000001"
# (link id, partner reference, created at): acme's first link is its second one made.
LEGACY_LINKS = (
    ("1a000000-0000-4000-8000-000000000001", "acme", "2026-01-02 00:00:00+00:00"),
    ("1a000000-0000-4000-8000-000000000002", "acme", "2026-01-01 00:00:00+00:00"),
    ("1a000000-0000-4000-8000-000000000003", "beta", "2026-01-03 00:00:00+00:00"),
)
LEGACY_CLICK = "2a000000-0000-4000-8000-000000000001"
# PostgreSQL's NOT NULL, and SQLite's triggers that say the same.
REFUSED = (asyncpg.NotNullViolationError, sqlite3.IntegrityError)
MISSING_PARTNER = (
    r"NOT NULL constraint failed: tracking_link\.partner"
    r'|null value in column "partner" of relation "tracking_link"'
)


def _run(command: str, *arguments: str, url: str) -> None:
    result = subprocess.run(
        [str(BIN / command), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"DATABASE_URL": url},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def _postgres(url: str, statement: str) -> None:
    parts = urlsplit(url)
    maintenance = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5)
    try:
        await maintenance.execute(statement)
    finally:
        await maintenance.close()


@pytest.fixture
async def legacy_url(store: Engine, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database beside the suite's, of the same engine."""
    if not is_postgres(store):
        yield f"sqlite:///{tmp_path / 'legacy.sqlite'}"
        return
    url = os.environ["DATABASE_URL"] + "_legacy"
    name = urlsplit(url).path.lstrip("/")
    await _postgres(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _postgres(url, f'CREATE DATABASE "{name}"')
    yield url
    await _postgres(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def migrated(legacy_url: str) -> AsyncIterator[Store]:
    """The legacy store with its links and a click, migrated past partners, opened."""
    _run("piccolo", "migrations", "forwards", "models", BEFORE_PARTNERS, url=legacy_url)
    engine = Settings(database_url=legacy_url).create_engine()
    statements = [
        "INSERT INTO offer (id, name, landing_url, created_at, fire_policy) VALUES"
        f" ('{OFFER}', 'Casino', 'https://casino.example/', '2026-01-01 00:00:00+00:00', 'open')",
        *(
            "INSERT INTO tracking_link (id, offer, partner_reference, created_at)"
            f" VALUES ('{link}', '{OFFER}', '{reference}', '{created_at}')"
            for link, reference, created_at in LEGACY_LINKS
        ),
        "INSERT INTO click (id, created_at, stage, tracking_link) VALUES"
        f" ('{LEGACY_CLICK}', '2026-01-04 00:00:00+00:00', 0, '{LEGACY_LINKS[0][0]}')",
    ]
    for statement in statements:
        await engine.run_ddl(statement)
    _run("conversions", "migrate", url=legacy_url)
    await open_store(engine, pool_min_size=0, pool_max_size=2)
    yield engine
    await close_store(engine)


async def test_each_partner_reference_becomes_a_partner_of_its_links(migrated: Store) -> None:
    with tables_bound_to(migrated):
        partners = await Partner.select().order_by(Partner.name)
        links = await TrackingLink.select(TrackingLink.id, TrackingLink.partner)
    assert [partner["name"] for partner in partners] == ["acme", "beta"]
    # Each partner is as old as its first link.
    assert [partner["created_at"].isoformat() for partner in partners] == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-03T00:00:00+00:00",
    ]
    by_name = {partner["name"]: partner["id"] for partner in partners}
    assert {str(link["id"]): link["partner"] for link in links} == {
        link: by_name[reference] for link, reference, _ in LEGACY_LINKS
    }


async def test_a_link_without_a_partner_is_refused_from_then_on(migrated: Store) -> None:
    with pytest.raises(REFUSED, match=MISSING_PARTNER):
        await migrated.run_ddl(
            "INSERT INTO tracking_link (id, offer, created_at)"
            f" VALUES ('{uuid.uuid4()}', '{OFFER}', '2026-01-05 00:00:00+00:00')"
        )
    with pytest.raises(REFUSED, match=MISSING_PARTNER):
        await migrated.run_ddl(f"UPDATE tracking_link SET partner = NULL WHERE offer = '{OFFER}'")


async def test_existing_links_keep_working_and_read_their_reference_as_deprecated(
    migrated: Store, client: httpx.AsyncClient
) -> None:
    with tables_bound_to(migrated):
        visit = await client.get(f"/track/{LEGACY_LINKS[0][0]}")
        assert visit.status_code == 302, visit.text
        clicks = await Click.count().where(Click.tracking_link == LEGACY_LINKS[0][0])
        admin = await graphql_as(client, Scope.ADMIN)
        data = await admin.data(
            "query ($id: UUID!) { click(id: $id) {"
            " trackingLink { id partnerReference partner { name } } } }",
            {"id": LEGACY_CLICK},
        )
    assert clicks == 2
    assert data == {
        "click": {
            "trackingLink": {
                "id": LEGACY_LINKS[0][0],
                "partnerReference": "acme",
                "partner": {"name": "acme"},
            }
        }
    }
