"""The indexes of rejected fires: fireRejections' newest-first pages, unfiltered and by
click, offer or partner (a partner key's own view is the partner's), and the pruning of
rows past their retention, which walks the oldest `at` first.

Raw SQL, spelled the same on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T10:32:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "Indexes of rejected fires"

INDEXES = {
    # The unfiltered page, a from/to range, and pruning (at < cutoff, oldest first).
    "fire_rejection_at_id": ("INDEX", "fire_rejection (at, id)"),
    "fire_rejection_click_id_at_id": ("INDEX", "fire_rejection (click_id, at, id)"),
    "fire_rejection_offer_at_id": ("INDEX", "fire_rejection (offer, at, id)"),
    "fire_rejection_partner_at_id": ("INDEX", "fire_rejection (partner, at, id)"),
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for name, (kind, target) in INDEXES.items():
            await engine.run_ddl(f"CREATE {kind} {name} ON {target}")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for name in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
