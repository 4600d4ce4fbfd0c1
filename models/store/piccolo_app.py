"""The Piccolo app: the tables and their migrations, beside each other."""

import os

from piccolo.conf.apps import AppConfig

from models.store.tables import TABLES

# The name the stored migration history was written under: it must never change.
APP_NAME = "models"
CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=list(TABLES),
    migration_dependencies=[],
    commands=[],
)
