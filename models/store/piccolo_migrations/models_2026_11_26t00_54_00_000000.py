"""The deduplication rules as database constraints, so racing requests cannot break them.

Partial unique indexes are spelled the same on SQLite and PostgreSQL; Piccolo's
column options cannot express them, hence raw SQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T00:54:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Conversion deduplication and lookup indexes"

CREATE_INDEXES = (
    # One install and one registration per click.
    """CREATE UNIQUE INDEX conversion_one_step_per_click
       ON conversion (click, type) WHERE type IN ('install', 'registration')""",
    # One deposit per (click, transaction_id); deposits without one are never duplicates.
    """CREATE UNIQUE INDEX conversion_one_deposit_per_transaction
       ON conversion (click, transaction_id)
       WHERE type = 'deposit' AND transaction_id IS NOT NULL""",
    # A click's conversions, and "has this click a deposit yet?".
    "CREATE INDEX conversion_click_type ON conversion (click, type)",
)

DROP_INDEXES = (
    "DROP INDEX conversion_click_type",
    "DROP INDEX conversion_one_deposit_per_transaction",
    "DROP INDEX conversion_one_step_per_click",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        for statement in CREATE_INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes() -> None:
        engine = engine_finder()
        for statement in DROP_INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
