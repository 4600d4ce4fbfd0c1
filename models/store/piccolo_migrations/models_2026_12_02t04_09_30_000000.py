"""Conversions recorded through GraphQL came with an API key: they count as verified.

A migration of its own because a migration's raw steps run before its table changes,
and the `verified` column comes with the one before.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T04:09:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Mark conversions recorded with an API key as verified"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def mark_verified() -> None:
        await engine_finder().run_ddl(
            "UPDATE conversion SET verified = true WHERE source = 'graphql'"
        )

    manager.add_raw(mark_verified)
    return manager
