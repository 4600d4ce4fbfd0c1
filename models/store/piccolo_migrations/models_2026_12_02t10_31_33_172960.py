"""Conversions recorded by `conversions import` have source "import"."""

from enum import Enum

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "2026-12-02T10:31:33:172960"
VERSION = "1.38.0"
DESCRIPTION = ""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    manager.alter_column(
        table_class_name="Conversion",
        tablename="conversion",
        column_name="source",
        db_column_name="source",
        params={
            "choices": Enum(
                "Source",
                {"PIXEL": "pixel", "GRAPHQL": "graphql", "IMPORT": "import"},
            )
        },
        old_params={"choices": Enum("Source", {"PIXEL": "pixel", "GRAPHQL": "graphql"})},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
