"""The outbox rides the pixel's batch: what a batch sends to the store with postback
rules configured, against what it sends without any (docs/postbacks.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from piccolo.engine.base import Engine
from piccolo.table import sort_table_classes

from models.clicks.service import NewClick, create_click
from models.partners.access import EVERYTHING
from models.partners.partners import create_partner
from models.postbacks.rules import RuleSaved, create_rule
from models.store import batch_sql
from models.store.engine import SQLiteStore, current_engine
from models.store.tables import TABLES, PostbackDelivery, PostbackEvent
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from models.writes import store_report
from tests.support import validated_report


class CountingConnection:
    """An asyncpg connection that counts the statements sent through it."""

    def __init__(self, connection: Any, sent: list[str]) -> None:
        self._connection = connection
        self._sent = sent

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._connection, name)
        if name not in {"execute", "fetch", "fetchval", "fetchrow", "executemany"}:
            return method

        async def counted(statement: str, *arguments: Any) -> Any:
            self._sent.append(statement)
            return await method(statement, *arguments)

        return counted


def _count_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the batch runs from here on."""
    sent: list[str] = []
    if isinstance(current_engine(), SQLiteStore):
        original_sqlite: Callable[..., Any] = batch_sql.write_sqlite

        def traced(connection: sqlite3.Connection, *arguments: Any, **options: Any) -> Any:
            connection.set_trace_callback(sent.append)
            try:
                return original_sqlite(connection, *arguments, **options)
            finally:
                connection.set_trace_callback(None)

        monkeypatch.setattr(batch_sql, "write_sqlite", traced)
    else:
        original_postgres: Callable[..., Any] = batch_sql.write_postgres

        async def counted(connection: Any, *arguments: Any, **options: Any) -> Any:
            return await original_postgres(
                CountingConnection(connection, sent), *arguments, **options
            )

        monkeypatch.setattr(batch_sql, "write_postgres", counted)
    return sent


async def _empty() -> None:
    for table in reversed(sort_table_classes(list(TABLES))):
        await table.delete(force=True)


async def _one_install(*, with_rules: bool) -> None:
    partner = await create_partner("net")
    offer = await create_offer("offer", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    if with_rules:
        for events in ([PostbackEvent.INSTALL], [PostbackEvent.INSTALL, PostbackEvent.DEPOSIT]):
            saved = await create_rule(
                EVERYTHING,
                partner_id=partner.id,
                offer_id=None,
                events=events,
                url_template="https://p.example/pb?c={click_id}",
                allow_private_networks=False,
            )
            assert isinstance(saved, RuleSaved)
    click_id = await create_click(
        NewClick(tracking_link_id=link.id, created_at=datetime.now(UTC) - timedelta(hours=1))
    )
    await store_report(validated_report(click_id))


async def test_rules_add_no_round_trip_on_postgresql_and_one_statement_on_sqlite(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _count_statements(monkeypatch)
    await _one_install(with_rules=False)
    without = list(sent)
    assert await PostbackDelivery.count() == 0
    await _empty()
    sent.clear()
    await _one_install(with_rules=True)
    assert await PostbackDelivery.count() == 2
    if isinstance(current_engine(), SQLiteStore):
        # No round trips here: statements run in-process on the writer. Without rules,
        # one read finds none; with them, the same read and an insert per delivery.
        assert [s for s in without if "postback" in s] == [without[4]]
        queued = [s for s in sent if s.startswith("INSERT INTO postback_delivery")]
        assert len(queued) == 2
        assert len(sent) == len(without) + len(queued)
    else:
        # The same statements, the deliveries riding in the conversions' insert.
        assert sent == without
