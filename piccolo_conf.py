"""Piccolo's configuration: the engine comes from DATABASE_URL (default: ./conversions.sqlite)."""

from piccolo.conf.apps import AppRegistry

from api.settings import Settings

DB = Settings.from_env().create_engine()

APP_REGISTRY = AppRegistry(apps=["models.store.piccolo_app"])
