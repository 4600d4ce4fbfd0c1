"""Drop conversion_click_type: every write paid for an index no query needs any more.

Its two jobs moved: a click's stage answers "has this click a deposit yet?", and
conversion_click_occurred_at_id lists a click's conversions. Each conversion stored
now updates one index fewer.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Drop the redundant conversion (click, type) index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def drop_index() -> None:
        await engine_finder().run_ddl("DROP INDEX conversion_click_type")

    async def restore_index() -> None:
        await engine_finder().run_ddl(
            "CREATE INDEX conversion_click_type ON conversion (click, type)"
        )

    manager.add_raw(drop_index)
    manager.add_raw_backwards(restore_index)
    return manager
