"""The statuses migration on a store that predates it: stored conversions become
APPROVED with an empty history, offers hold nothing, and both can change afterwards.

A database of its own, migrated to the migration before statuses with Piccolo's
command, given a conversion as the old schema held it, then migrated with
`conversions migrate` as a deploy would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.settings import Settings
from models.keys import Scope
from models.store.engine import Store, close_store, open_store
from models.store.tables import Conversion, Offer
from tests import test_partner_migration
from tests.graphql_client import graphql_as
from tests.support import tables_bound_to

BEFORE_STATUSES = "2026-12-02T07:22:10:000000"
OFFER = "0b000000-0000-4000-8000-000000000001"
PARTNER = "3b000000-0000-4000-8000-000000000001"
LINK = "1b000000-0000-4000-8000-000000000001"
CLICK = "2b000000-0000-4000-8000-000000000001"
CONVERSION = "4b000000-0000-4000-8000-000000000001"
# The partners migration test's: an empty database beside the suite's, of the same engine,
# and how a deploy's commands are run against it.
legacy_url = test_partner_migration.legacy_url
_run = test_partner_migration._run


@pytest.fixture
async def migrated(legacy_url: str) -> AsyncIterator[Store]:
    """The old store with a deposit on a click, migrated past statuses, opened."""
    _run("piccolo", "migrations", "forwards", "models", BEFORE_STATUSES, url=legacy_url)
    engine = Settings(database_url=legacy_url).create_engine()
    at = "2026-01-04 00:00:00+00:00"
    statements = [
        "INSERT INTO offer (id, name, landing_url, created_at, fire_policy) VALUES"
        f" ('{OFFER}', 'Casino', 'https://casino.example/', '{at}', 'open')",
        f"INSERT INTO partner (id, name, created_at) VALUES ('{PARTNER}', 'acme', '{at}')",
        "INSERT INTO tracking_link (id, offer, partner, created_at)"
        f" VALUES ('{LINK}', '{OFFER}', '{PARTNER}', '{at}')",
        "INSERT INTO click (id, created_at, stage, tracking_link) VALUES"
        f" ('{CLICK}', '{at}', 3, '{LINK}')",
        "INSERT INTO conversion (id, click, type, occurred_at, received_at, transaction_id,"
        " currency, amount_minor, is_first_deposit, source, verified) VALUES"
        f" ('{CONVERSION}', '{CLICK}', 'deposit', '{at}', '{at}', 't1', 'eur', 4000, TRUE,"
        " 'pixel', FALSE)",
    ]
    for statement in statements:
        await engine.run_ddl(statement)
    _run("conversions", "migrate", url=legacy_url)
    await open_store(engine, pool_min_size=0, pool_max_size=2)
    yield engine
    await close_store(engine)


async def test_stored_conversions_become_approved_and_offers_hold_nothing(
    migrated: Store, client: httpx.AsyncClient
) -> None:
    with tables_bound_to(migrated):
        assert await Conversion.select(Conversion.status) == [{"status": "approved"}]
        assert await Offer.select(Offer.hold_deposits) == [{"hold_deposits": False}]
        admin = await graphql_as(client, Scope.ADMIN)
        changed = await admin.data(
            "mutation ($id: UUID!) { setConversionStatus(input: {ids: [$id], status: REVERSED})"
            " { ... on StatusChanged { conversion { status isFirstDeposit"
            " statusHistory { from to } } } } }",
            {"id": CONVERSION},
        )
    assert changed == {
        "setConversionStatus": [
            {
                "conversion": {
                    "status": "REVERSED",
                    "isFirstDeposit": True,
                    "statusHistory": [{"from": "APPROVED", "to": "REVERSED"}],
                }
            }
        ]
    }
