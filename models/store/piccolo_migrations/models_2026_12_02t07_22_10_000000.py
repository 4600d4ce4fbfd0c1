"""The outbox's indexes: one delivery per rule, conversion and event; the dispatcher's
due deliveries; and GraphQL's newest-first pages of rules and deliveries.

Raw SQL, spelled the same on SQLite and PostgreSQL (both take partial indexes).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-02T07:22:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "Indexes of postback rules and deliveries"

INDEXES = {
    # What makes a retried batch, or a second enqueue of the same event, a no-op.
    "postback_delivery_rule_conversion_event": (
        "UNIQUE INDEX",
        "postback_delivery (rule, conversion, event)",
    ),
    # The dispatcher's claim: pending deliveries, soonest due first; the rest never read.
    "postback_delivery_due": (
        "INDEX",
        "postback_delivery (next_attempt_at) WHERE status = 'pending'",
    ),
    # A rule's last finished deliveries, which decide whether it is disabled.
    "postback_delivery_rule_finished_at": ("INDEX", "postback_delivery (rule, finished_at)"),
    # postbackDeliveries' pages, unfiltered and by rule or conversion.
    "postback_delivery_created_at_id": ("INDEX", "postback_delivery (created_at, id)"),
    "postback_delivery_rule_created_at_id": ("INDEX", "postback_delivery (rule, created_at, id)"),
    "postback_delivery_conversion_created_at_id": (
        "INDEX",
        "postback_delivery (conversion, created_at, id)",
    ),
    # A partner's rules: Partner.postbackRules, and the batch's join from a link's partner.
    "postback_rule_partner_created_at_id": ("INDEX", "postback_rule (partner, created_at, id)"),
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
