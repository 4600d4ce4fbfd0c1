"""No N+1 queries behind nested fields, and index lookups behind every filter."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine
from piccolo.query import Select

from models.clicks import queries as clicks
from models.clicks.queries import ClickFilter
from models.conversions import queries as conversions
from models.conversions.queries import ConversionFilter
from models.keys import Scope
from models.paging import Cursor
from models.partners.access import Access
from models.store.reads import TableReads
from models.store.tables import ConversionType, Currency, Stage
from models.tracking import links
from tests.graphql_client import GraphQL, graphql_as, seed_click, seed_conversion

CONVERSIONS_WITH_CLICKS = """
query($first: Int) {
  conversions(first: $first) {
    totalCount
    edges { node { id amount click { id stage conversions(first: 2) {
      totalCount edges { node { id click { id } } }
    } } } }
  }
}
"""

CLICKS_WITH_CONVERSIONS = """
query($first: Int) {
  clicks(first: $first) {
    edges { node { id conversions(first: 1) { totalCount edges { node { id click { id } } } } } }
  }
}
"""


@contextmanager
def counted_statements(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the engine runs, observed through Piccolo's query logging hook."""
    statements: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(engine, "log_queries", True)
        # On the class: PostgresEngine instances have slots, and one engine is in use anyway.
        patch.setattr(
            type(engine), "print_query", lambda _, query_id, query: statements.append(query)
        )
        yield statements


async def _seed_clicks_with_two_conversions(count: int) -> None:
    for n in range(count):
        click_id = await seed_click(minutes_ago=60 - n / 10)
        await seed_conversion(click_id, "install")
        await seed_conversion(click_id, "deposit", transaction_id="t", amount="1", currency="eur")


async def _statements_for(
    graphql: GraphQL, engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str, first: int
) -> tuple[int, dict[str, Any]]:
    with counted_statements(engine, monkeypatch) as statements:
        data = await graphql.data(query, {"first": first})
    return len(statements), data


async def test_a_page_of_conversions_with_their_clicks_costs_the_same_at_any_size(
    client: httpx.AsyncClient, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed_clicks_with_two_conversions(30)
    graphql = await graphql_as(client, Scope.READ)
    small, _ = await _statements_for(graphql, db, monkeypatch, CONVERSIONS_WITH_CLICKS, 5)
    large, data = await _statements_for(graphql, db, monkeypatch, CONVERSIONS_WITH_CLICKS, 50)
    edges = data["conversions"]["edges"]
    assert len(edges) == 50
    assert len({edge["node"]["click"]["id"] for edge in edges}) == 25
    assert all(edge["node"]["click"]["conversions"]["totalCount"] == 2 for edge in edges)
    # The key, the page, its count, the clicks, their conversion pages (2) and counts.
    assert small == large <= 7, (small, large)


async def test_a_page_of_clicks_with_their_conversions_costs_the_same_at_any_size(
    client: httpx.AsyncClient, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed_clicks_with_two_conversions(30)
    graphql = await graphql_as(client, Scope.READ)
    small, _ = await _statements_for(graphql, db, monkeypatch, CLICKS_WITH_CONVERSIONS, 3)
    large, data = await _statements_for(graphql, db, monkeypatch, CLICKS_WITH_CONVERSIONS, 30)
    assert len(data["clicks"]["edges"]) == 30
    assert small == large <= 6, (small, large)


# --- EXPLAIN: each filter is an index range scan in page order, never a scan and sort ---

NOW = datetime.now(UTC)
CURSOR = Cursor(NOW, uuid.uuid4())  # any id: the plan is what matters

CONVERSION_FILTER_INDEXES = [
    (ConversionFilter(), "conversion_occurred_at_id"),
    (ConversionFilter(click_id=CURSOR.id), "conversion_click_occurred_at_id"),
    (ConversionFilter(player_id="p"), "conversion_player_occurred_at_id"),
    (ConversionFilter(transaction_id="t"), "conversion_transaction_occurred_at_id"),
    (ConversionFilter(type=ConversionType.DEPOSIT), "conversion_type_occurred_at_id"),
    (ConversionFilter(currency=Currency.EUR), "conversion_currency_occurred_at_id"),
    (ConversionFilter(occurred_from=NOW - timedelta(days=1)), "conversion_occurred_at_id"),
    (ConversionFilter(occurred_to=NOW), "conversion_occurred_at_id"),
]

CLICK_FILTER_INDEXES = [
    (ClickFilter(), "click_created_at_id"),
    (ClickFilter(player_id="p"), "click_player_created_at_id"),
    (ClickFilter(stage=Stage.DEPOSIT), "click_stage_created_at_id"),
    (ClickFilter(created_from=NOW - timedelta(days=1)), "click_created_at_id"),
    (ClickFilter(created_to=NOW), "click_created_at_id"),
]


async def _plan(engine: Engine, query: Select) -> str:
    sql, arguments = query.querystrings[0].compile_string(engine_type="postgres")
    async with engine.transaction() as transaction:
        # The test tables are tiny, so the planner would rightly scan or sort them. With
        # those plans priced out, it shows whether an index serves filter and order alike:
        # if none does, the plan still scans or sorts, and the test fails.
        for plan_kind in ("seqscan", "bitmapscan", "sort"):
            await transaction.connection.execute(f"SET LOCAL enable_{plan_kind} = off")
        rows = await transaction.connection.fetch(f"EXPLAIN {sql}", *arguments)
    return "\n".join(row[0] for row in rows)


def _assert_index_range_scan(plan: str, index: str) -> None:
    assert re.search(rf"Index Scan( Backward)? using {index} ", plan), plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


@pytest.fixture
def postgres(db: Engine) -> Engine:
    if db.engine_type != "postgres":
        pytest.skip("EXPLAIN plans are checked on PostgreSQL, the production store")
    return db


@pytest.mark.parametrize(("conversion_filter", "index"), CONVERSION_FILTER_INDEXES)
@pytest.mark.parametrize("after", [None, CURSOR])
async def test_conversion_filters_are_index_range_scans(
    postgres: Engine, conversion_filter: ConversionFilter, index: str, after: Cursor | None
) -> None:
    query = conversions.READS.page_query(conversion_filter.conditions(), 50, after)
    plan = await _plan(postgres, query)
    _assert_index_range_scan(plan, index)


@pytest.mark.parametrize(("click_filter", "index"), CLICK_FILTER_INDEXES)
@pytest.mark.parametrize("after", [None, CURSOR])
async def test_click_filters_are_index_range_scans(
    postgres: Engine, click_filter: ClickFilter, index: str, after: Cursor | None
) -> None:
    plan = await _plan(postgres, clicks.READS.page_query(click_filter.conditions(), 50, after))
    _assert_index_range_scan(plan, index)


PARTNER_PAGE_INDEXES = [
    (clicks.READS, "click_created_at_id"),
    (conversions.READS, "conversion_occurred_at_id"),
    (links.READS, "tracking_link_partner_created_at_id"),
]


@pytest.mark.parametrize(("reads", "index"), PARTNER_PAGE_INDEXES)
@pytest.mark.parametrize("after", [None, CURSOR])
async def test_a_partner_keys_pages_walk_an_index_in_page_order(
    postgres: Engine, reads: TableReads[Any], index: str, after: Cursor | None
) -> None:
    """A partner's key's pages join their way to the partner but still read in page
    order: an index walked newest first, never a scan of the table and a sort."""
    access = Access(uuid.uuid4())
    query = reads.page_query(access.conditions(reads.table), 50, after)
    plan = await _plan(postgres, query)
    assert re.search(rf"Index (Only )?Scan( Backward)? using {index} ", plan), plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


async def test_aliased_lookups_by_id_are_batched(
    client: httpx.AsyncClient, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    click_ids = [await seed_click() for _ in range(3)]
    conversion_ids = [await seed_conversion(click_id, "install") for click_id in click_ids]
    graphql = await graphql_as(client, Scope.READ)
    lookups = " ".join(
        f'c{n}: click(id: "{click_id}") {{ id }} v{n}: conversion(id: "{conversion_id}") {{ id }}'
        for n, (click_id, conversion_id) in enumerate(zip(click_ids, conversion_ids, strict=True))
    )
    with counted_statements(db, monkeypatch) as statements:
        data = await graphql.data("{ " + lookups + " }")
    assert data["c2"] == {"id": str(click_ids[2])}
    assert data["v1"] == {"id": str(conversion_ids[1])}
    # The key, then one statement for all clicks and one for all conversions.
    assert len(statements) == 3, statements
