"""Indexes behind the tracking link's GraphQL reads.

Like the earlier filter indexes, each ends in the page order, so a filtered page is
one index range scan. PostgreSQL does not index foreign keys by itself; these also
keep the ON DELETE RESTRICT checks of offers and tracking links cheap. Raw SQL,
spelled the same on SQLite and PostgreSQL, in a migration of its own because a
migration's raw steps run before its table changes.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Indexes for tracking links, offers and the click filters they add"

INDEXES = {
    "click_tracking_link_created_at_id": "click (tracking_link, created_at, id)",
    "click_country_created_at_id": "click (country, created_at, id)",
    "tracking_link_offer_created_at_id": "tracking_link (offer, created_at, id)",
    "tracking_link_created_at_id": "tracking_link (created_at, id)",
    "offer_created_at_id": "offer (created_at, id)",
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
