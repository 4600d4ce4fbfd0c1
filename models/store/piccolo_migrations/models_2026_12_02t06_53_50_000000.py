"""Every tracking link gets its partner: one per distinct `partner_reference`.

Each distinct reference becomes a partner of that name, created when its first link
was, and its links are bound to it, so existing links and their clicks keep working
and keep their data together. The reference column then goes: the partner's name
holds it, and GraphQL's deprecated `TrackingLink.partnerReference` reads it from
there. A link's partner is required from here on: PostgreSQL's NOT NULL, and on
SQLite, which cannot alter a column, triggers that refuse a link without one.

Forwards only: the references live on as partner names.
"""

import uuid

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.table import Table

ID = "2026-12-02T06:53:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "A partner for each partner reference; a tracking link's partner is required"

INDEXES = {
    # A partner's links, newest first: Partner.trackingLinks and a partner key's pages.
    "tracking_link_partner_created_at_id": "tracking_link (partner, created_at, id)",
    "partner_created_at_id": "partner (created_at, id)",
}

SQLITE_REQUIRED_PARTNER = tuple(
    f"""CREATE TRIGGER tracking_link_partner_required_on_{event.split()[0].lower()}
        BEFORE {event} ON tracking_link WHEN NEW.partner IS NULL
        BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: tracking_link.partner'); END"""
    for event in ("INSERT", "UPDATE OF partner")
)


class TrackingLink(Table, tablename="tracking_link", schema=None):
    """The table as this migration finds it, for its raw statements."""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def partners_from_references() -> None:
        references = await TrackingLink.raw(
            "SELECT DISTINCT partner_reference FROM tracking_link ORDER BY partner_reference"
        )
        for row in references:
            reference, partner_id = row["partner_reference"], uuid.uuid4()
            await TrackingLink.raw(
                "INSERT INTO partner (id, name, created_at) SELECT {}, {}, MIN(created_at)"
                " FROM tracking_link WHERE partner_reference = {}",
                partner_id,
                reference,
                reference,
            )
            await TrackingLink.raw(
                "UPDATE tracking_link SET partner = {} WHERE partner_reference = {}",
                partner_id,
                reference,
            )
        engine = engine_finder()
        assert engine is not None
        if engine.engine_type == "postgres":
            await engine.run_ddl("ALTER TABLE tracking_link ALTER COLUMN partner SET NOT NULL")
        else:
            for trigger in SQLITE_REQUIRED_PARTNER:
                await engine.run_ddl(trigger)
        for name, target in INDEXES.items():
            await engine.run_ddl(f"CREATE INDEX {name} ON {target}")

    manager.add_raw(partners_from_references)
    # Table changes run after the raw step: the references are read before they go.
    manager.drop_column(
        table_class_name="TrackingLink",
        tablename="tracking_link",
        column_name="partner_reference",
        db_column_name="partner_reference",
        schema=None,
    )
    return manager
