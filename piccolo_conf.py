"""Piccolo's configuration: the engine comes from DATABASE_URL (default: ./conversions.sqlite)."""

from piccolo.conf.apps import AppRegistry

from models.database import DatabaseSettings, create_engine

DB = create_engine(DatabaseSettings.from_env())

APP_REGISTRY = AppRegistry(apps=["models.piccolo_app"])
