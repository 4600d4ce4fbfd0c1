"""The status history's index: a conversion's changes, oldest first (statusHistory).

Raw SQL, spelled the same on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T10:32:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "Index of conversion status changes"

INDEXES = {
    "conversion_status_change_conversion_changed_at": (
        "INDEX",
        "conversion_status_change (conversion, changed_at, id)",
    ),
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
