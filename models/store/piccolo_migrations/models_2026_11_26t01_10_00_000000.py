"""Indexes behind GraphQL's filters and newest-first keyset pages.

Each index ends in the page order, so a filtered page is one index range scan that
stops after `first + 1` rows instead of a sort of every match. Raw SQL, spelled the
same on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T01:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Indexes for GraphQL filters and keyset pagination"

INDEXES = {
    # The unfiltered page and the occurred-at range.
    "conversion_occurred_at_id": "conversion (occurred_at, id)",
    # A click's conversions, and the clickId filter.
    "conversion_click_occurred_at_id": "conversion (click, occurred_at, id)",
    "conversion_player_occurred_at_id": "conversion (player_id, occurred_at, id)",
    "conversion_transaction_occurred_at_id": "conversion (transaction_id, occurred_at, id)",
    "conversion_type_occurred_at_id": "conversion (type, occurred_at, id)",
    "conversion_currency_occurred_at_id": "conversion (currency, occurred_at, id)",
    # The unfiltered page of clicks and the created-at range.
    "click_created_at_id": "click (created_at, id)",
    "click_player_created_at_id": "click (player_id, created_at, id)",
    "click_stage_created_at_id": "click (stage, created_at, id)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        for name, target in INDEXES.items():
            await engine.run_ddl(f"CREATE INDEX {name} ON {target}")

    async def drop_indexes() -> None:
        engine = engine_finder()
        for name in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
