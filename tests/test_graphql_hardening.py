"""Production hardening of /graphql, and what development mode turns back on."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from api.app import create_app
from api.settings import Settings
from models.conversions import queries as conversions
from models.keys import Scope
from models.store.engine import is_postgres
from models.store.tables import ApiKey, Click, Conversion
from tests.graphql_client import GraphQL, bearer, issue_key, seed_click, seed_conversion
from tests.support import tables_bound_to, unreachable_engine
from tests.test_graphql_performance import counted_statements

INTROSPECTION = "{ __schema { queryType { name } } }"
CREATE_CLICK = "mutation { createClick(input: {}) { id } }"


@pytest.fixture
async def graphql(client: httpx.AsyncClient) -> GraphQL:
    return GraphQL(client, await issue_key(Scope.ADMIN))


async def _client_for(settings: Settings) -> AsyncIterator[GraphQL]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield GraphQL(client, await issue_key(Scope.ADMIN))


@pytest.fixture
async def dev_graphql(db: Engine, settings: Settings) -> AsyncIterator[GraphQL]:
    async for graphql in _client_for(settings.model_copy(update={"conversions_dev": True})):
        yield graphql


def _nested(depth: int) -> str:
    """A query `depth` object levels deep: conversions > edges > node > click > ...,
    with pages of one so that only its depth counts."""
    levels = ["conversions(first: 1)", "edges", "node", "click"]
    opening = " { ".join(levels[i % 4] for i in range(depth))
    return "{ " + opening + " { __typename" + " }" * depth + " }"


async def test_production_refuses_introspection(graphql: GraphQL) -> None:
    errors = await graphql.errors(INTROSPECTION)
    assert "introspection has been disabled" in errors[0]["message"]
    assert (await graphql.data("{ __typename }")) == {"__typename": "Query"}


async def test_development_allows_introspection(dev_graphql: GraphQL) -> None:
    data = await dev_graphql.data(INTROSPECTION)
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_production_serves_no_graphiql(graphql: GraphQL) -> None:
    page = await graphql.client.get(
        "/graphql", headers={"Accept": "text/html", **bearer(graphql.secret)}
    )
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    anonymous = await graphql.client.get("/graphql", headers={"Accept": "text/html"})
    assert anonymous.status_code == 401


async def test_development_serves_graphiql_without_a_key(dev_graphql: GraphQL) -> None:
    page = await dev_graphql.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    # GraphiQL's page executes nothing: a query still needs a key.
    query = await dev_graphql.client.get("/graphql", params={"query": "{ __typename }"})
    assert query.status_code == 401


UNION_FIELD = (
    "mutation { recordConversion(input: {clickId: "
    '"00000000-0000-0000-0000-000000000000", type: INSTALL}) { conversion { id } } }'
)


@pytest.mark.parametrize(
    ("query", "variables", "named", "hidden"),
    [
        ("{ clickz { id } }", None, "'clickz'", "'click'"),
        (UNION_FIELD, None, "'conversion'", "'ConversionRecorded'"),
        ("{ conversions(filtr: {}) { totalCount } }", None, "'filtr'", "'filter'"),
        (
            "{ conversions(filter: {type: DEPOSITT}) { totalCount } }",
            None,
            "'DEPOSITT'",
            "'DEPOSIT'",
        ),
        (
            "query($t: ConversionType) { conversions(filter: {type: $t}) { totalCount } }",
            {"t": "DEPOSITT"},
            "'DEPOSITT'",
            "'DEPOSIT'",
        ),
        (
            "query($t: ConversionTyp) { conversions(filter: {type: $t}) { totalCount } }",
            None,
            "'ConversionTyp'",
            "'ConversionType'",
        ),
        ("{ ...F } fragment F on Quer { __typename }", None, "'Quer'", "'Query'"),
        ("{ ... on Quer { __typename } }", None, "'Quer'", "'Query'"),
        (
            '{ conversions(filter: {playerIdd: "p"}) { totalCount } }',
            None,
            "'playerIdd'",
            "'playerId'",
        ),
        (
            "query($f: ConversionFilter) { conversions(filter: $f) { totalCount } }",
            {"f": {"playerIdd": "p"}},
            "'playerIdd'",
            "'playerId'",
        ),
    ],
    ids=[
        "field",
        "field-of-a-union",
        "argument",
        "enum-value",
        "enum-value-in-a-variable",
        "type-of-a-variable",
        "type-of-a-fragment",
        "type-of-an-inline-fragment",
        "input-field",
        "input-field-in-a-variable",
    ],
)
async def test_no_suggestions_of_any_kind(
    graphql: GraphQL, query: str, variables: dict[str, Any] | None, named: str, hidden: str
) -> None:
    """Suggestions would map a schema whose introspection is off, name by name."""
    errors = await graphql.errors(query, variables)
    assert named in errors[0]["message"], errors
    assert "Did you mean" not in json.dumps(errors)
    assert hidden not in json.dumps(errors)


async def test_the_depth_limit(graphql: GraphQL) -> None:
    assert await graphql.data(_nested(10))
    errors = await graphql.errors(_nested(11))
    assert "exceeds maximum operation depth of 10" in errors[0]["message"]


async def test_the_alias_limit(graphql: GraphQL) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{n}: __typename" for n in range(count)) + " }"

    assert len(await graphql.data(aliased(30))) == 30
    errors = await graphql.errors(aliased(31))
    assert errors[0]["message"] == "31 aliases found. Allowed: 30"


def _tokens(count: int) -> str:
    """A valid query of exactly `count` tokens (count >= 1994)."""
    # `__typename @include(if: true)` is 8 tokens; braces 2; each bare `__typename` 1.
    # (Thousands of bare repeats would trip graphql-core's own validation guard.)
    return "{ " + "__typename @include(if: true) " * 249 + "__typename " * (count - 1994) + "}"


async def test_the_token_limit(graphql: GraphQL) -> None:
    assert await graphql.data(_tokens(2000))
    errors = await graphql.errors(_tokens(2001))
    assert "more than 2000 tokens" in errors[0]["message"]


async def test_limits_are_configurable(db: Engine, settings: Settings) -> None:
    tight = settings.model_copy(
        update={"graphql_max_depth": 3, "graphql_max_aliases": 1, "graphql_max_tokens": 20}
    )
    async for graphql in _client_for(tight):
        assert "depth of 3" in (await graphql.errors(_nested(4)))[0]["message"]
        assert (
            "Allowed: 1" in (await graphql.errors("{ a: __typename b: __typename }"))[0]["message"]
        )
        tokens = "{ " + "__typename " * 20 + "}"
        assert "more than 20 tokens" in (await graphql.errors(tokens))[0]["message"]


def test_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GRAPHQL_MAX_DEPTH": "7",
            "GRAPHQL_MAX_ALIASES": "8",
            "GRAPHQL_MAX_TOKENS": "900",
            "GRAPHQL_MAX_PAGE_SIZE": "100",
            "GRAPHQL_MAX_COST": "5000",
            "GRAPHQL_TIMEOUT_SECONDS": "2.5",
        }
    )
    limits = ("graphql_max_depth", "graphql_max_aliases", "graphql_max_tokens")
    limits += ("graphql_max_page_size", "graphql_max_cost", "graphql_timeout_seconds")
    assert [getattr(settings, name) for name in limits] == [7, 8, 900, 100, 5000, 2.5]
    defaults = [10, 30, 2000, 500, 10_000, 10.0]
    assert [getattr(Settings.from_env({}), name) for name in limits] == defaults


# Thirty aliases (the most allowed) of a page of 500 conversions, each with its click's
# page of 500: 30 x 500 x (1 + 500) = 7,515,000 nodes.
COSTLY = (
    "{ "
    + " ".join(
        f"a{n}: conversions(first: 500) "
        "{ edges { node { click { conversions(first: 500) { edges { node { id } } } } } } }"
        for n in range(30)
    )
    + " }"
)
COSTLY_COST = 30 * 500 * (1 + 500)


async def test_the_cost_limit_refuses_before_anything_runs(
    graphql: GraphQL, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    click_id = await seed_click()
    for n in range(3):
        await seed_conversion(click_id, transaction_id=f"t{n}", amount="1", currency="eur")
    with counted_statements(db, monkeypatch) as statements:
        started = time.perf_counter()
        errors = await graphql.errors(COSTLY)
        elapsed = time.perf_counter() - started
    [error] = errors
    assert error["extensions"] == {
        "code": "GRAPHQL_VALIDATION_FAILED",
        "cost": COSTLY_COST,
        "maxCost": 10_000,
    }
    assert str(COSTLY_COST) in error["message"]
    assert "10000" in error["message"]
    # The API key was looked up; no resolver asked the store for anything.
    assert statements
    assert all('"api_key"' in statement for statement in statements), statements
    assert elapsed < 1, elapsed


async def test_a_refused_costly_query_delays_no_pixel_fire(
    client: httpx.AsyncClient, graphql: GraphQL
) -> None:
    click_id = await seed_click()
    refused, fired = await asyncio.gather(
        graphql.errors(COSTLY), client.get(f"/convert/{click_id}?type=install")
    )
    assert refused[0]["extensions"]["cost"] == COSTLY_COST
    assert fired.status_code == 202, fired.text
    assert await Conversion.count() == 1


DEFAULT_PAGES = "conversions { edges { node { click { conversions { totalCount } } } } }"


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        # Default pages of 50: 50 x (1 + 50) = 2,550 an alias, and aliases add up.
        ("{ " + " ".join(f"a{n}: {DEFAULT_PAGES}" for n in range(3)) + " }", None, 7_650),
        ("{ " + " ".join(f"a{n}: {DEFAULT_PAGES}" for n in range(4)) + " }", None, 10_200),
        (
            "query($n: Int) { conversions(first: $n) "
            "{ edges { node { click { conversions(first: $n) { totalCount } } } } } }",
            {"n": 99},
            9_900,
        ),
        (
            "query($n: Int) { conversions(first: $n) "
            "{ edges { node { click { conversions(first: $n) { totalCount } } } } } }",
            {"n": 100},
            10_100,
        ),
        (
            "query($n: Int = 200) { conversions(first: $n) "
            "{ edges { node { click { conversions(first: $n) { totalCount } } } } } }",
            None,
            40_200,
        ),
        (
            "{ conversions(first: 500) { ...Page } } "
            "fragment Page on ConversionConnection { edges { node { ...Click } } } "
            "fragment Click on Conversion { click { conversions(first: 500) { totalCount } } }",
            None,
            250_500,
        ),
        (
            "{ conversions(first: 500) { edges { node { ... on Conversion "
            "{ click { conversions(first: 500) { totalCount } } } } } } }",
            None,
            250_500,
        ),
        (
            "mutation { recordConversion(input: "
            '{clickId: "00000000-0000-0000-0000-000000000000", type: INSTALL}) '
            "{ ... on ConversionRecorded { conversion { click "
            "{ conversions(first: 500) { edges { node { click { conversions(first: 19) "
            "{ totalCount } } } } } } } } } }",
            None,
            10_000,
        ),
    ],
    ids=[
        "default-pages-3-aliases",
        "default-pages-4-aliases",
        "variable-99",
        "variable-100",
        "variable-default",
        "fragments",
        "inline-fragment",
        "mutation-at-the-limit",
    ],
)
async def test_the_cost_multiplies_pages_and_adds_up_fields(
    graphql: GraphQL, query: str, variables: dict[str, Any] | None, cost: int
) -> None:
    response = (await graphql.post(query, variables)).json()
    refusals = [
        error for error in response.get("errors", []) if "cost" in error.get("extensions", {})
    ]
    if cost <= 10_000:
        assert refusals == [], response
    else:
        assert [error["extensions"]["cost"] for error in refusals] == [cost], response


async def test_the_cost_limit_is_configurable(db: Engine, settings: Settings) -> None:
    async for graphql in _client_for(settings.model_copy(update={"graphql_max_cost": 100})):
        assert await graphql.data("{ conversions(first: 100) { totalCount } }")
        [error] = await graphql.errors("{ conversions(first: 101) { totalCount } }")
        assert error["extensions"]["maxCost"] == 100


@pytest.fixture
async def impatient_graphql(db: Engine, settings: Settings) -> AsyncIterator[GraphQL]:
    """An app that gives an operation 0.2 s. A fixture, so that the app configures
    logging before caplog starts capturing."""
    quick = settings.model_copy(update={"graphql_timeout_seconds": 0.2})
    async for graphql in _client_for(quick):
        yield graphql


async def test_the_timeout_cancels_the_operation(
    impatient_graphql: GraphQL,
    db: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = asyncio.Event()

    async def stalled_page(*_: object, **__: object) -> None:
        try:
            if is_postgres(db):
                await Conversion.raw("SELECT pg_sleep(30)")
            else:
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    monkeypatch.setattr(conversions.READS, "page", stalled_page)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="schema.hardening"):
        response = await impatient_graphql.post("{ conversions { totalCount } }")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    [error] = response.json()["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "EXECUTION_TIMEOUT", "requestId": request_id}
    assert "0.2 s" in error["message"]
    assert elapsed < 5, elapsed
    assert cancelled.is_set()
    [record] = [r for r in caplog.records if r.name == "schema.hardening"]
    assert record.levelno == logging.WARNING
    assert request_id in record.getMessage()
    if is_postgres(db):
        # The statement itself was cancelled on the server, not left to run on.
        await _no_statement_like("pg_sleep")
    # The worker is free again: the next request runs.
    monkeypatch.undo()
    assert await impatient_graphql.data("{ conversions { totalCount } }")


async def _no_statement_like(text: str) -> None:
    query = (
        "SELECT count(*) AS running FROM pg_stat_activity WHERE state = 'active'"
        " AND datname = current_database() AND pid <> pg_backend_pid() AND query LIKE {}"
    )
    for _ in range(50):
        [row] = await Conversion.raw(query, f"%{text}%")
        if row["running"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a statement with {text!r} is still running")


async def test_mutations_are_refused_over_get(graphql: GraphQL) -> None:
    response = await graphql.client.get(
        "/graphql", params={"query": CREATE_CLICK}, headers=bearer(graphql.secret)
    )
    assert response.status_code in {400, 405}, response.text
    assert await Click.count() == 0
    # Queries over GET stay allowed.
    query = await graphql.client.get(
        "/graphql", params={"query": "{ __typename }"}, headers=bearer(graphql.secret)
    )
    assert query.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps({"query": CREATE_CLICK})),
        ("text/plain;charset=UTF-8", json.dumps({"query": CREATE_CLICK})),
        ("application/x-www-form-urlencoded", "query=" + CREATE_CLICK),
        (
            "multipart/form-data; boundary=x",
            f'--x\r\nContent-Disposition: form-data; name="query"'
            f"\r\n\r\n{CREATE_CLICK}\r\n--x--\r\n",
        ),
    ],
)
async def test_posts_a_browser_form_could_send_are_refused(
    graphql: GraphQL, content_type: str, body: str
) -> None:
    """Simple requests (no CORS preflight) must never reach a mutation: no CSRF."""
    response = await graphql.client.post(
        "/graphql",
        content=body.encode(),
        headers={"Content-Type": content_type, **bearer(graphql.secret)},
    )
    assert response.status_code == 400, response.text
    assert await Click.count() == 0


async def test_batched_operations_are_refused(graphql: GraphQL) -> None:
    response = await graphql.client.post(
        "/graphql",
        json=[{"query": CREATE_CLICK}, {"query": CREATE_CLICK}],
        headers=bearer(graphql.secret),
    )
    assert response.status_code == 400
    assert await Click.count() == 0


async def _corrupt_conversion() -> None:
    """A row no code path writes: its type is no ConversionType, so reading it fails."""
    click_id = await seed_click()
    now = datetime.now(UTC)
    await Conversion.insert(
        Conversion(
            id=uuid.uuid4(),
            click=click_id,
            type="refund",
            occurred_at=now,
            received_at=now,
            source="pixel",
        )
    )


async def test_unexpected_errors_are_masked_and_logged_with_a_request_id(
    graphql: GraphQL, caplog: pytest.LogCaptureFixture
) -> None:
    await _corrupt_conversion()
    with caplog.at_level(logging.ERROR, logger="schema.hardening"):
        response = await graphql.post("{ conversions { edges { node { id type } } } }")
    assert response.status_code == 200
    [error] = response.json()["errors"]
    request_id = response.headers["x-request-id"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "refund" not in response.text
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.name == "schema.hardening"]
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    assert "refund" in str(record.exc_info[1])


async def test_development_shows_unexpected_errors(dev_graphql: GraphQL) -> None:
    await _corrupt_conversion()
    errors = await dev_graphql.errors("{ conversions { edges { node { id } } } }")
    assert "refund" in errors[0]["message"]


async def test_expected_errors_are_not_masked(graphql: GraphQL) -> None:
    errors = await graphql.errors("{ clicks(first: 100000) { totalCount } }")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "between 0 and 500" in errors[0]["message"]


async def test_an_unreachable_store_is_store_unavailable_not_a_masked_error(
    graphql: GraphQL, db: Engine, tmp_path: Path
) -> None:
    click_id = await seed_click()
    # The key is checked against the real store; clicks and conversions are out of reach.
    with tables_bound_to(unreachable_engine(db, tmp_path), Click, Conversion):
        recorded = await graphql.post(
            "mutation($id: UUID!) { recordConversion(input: {clickId: $id, type: INSTALL})"
            " { __typename } }",
            {"id": str(click_id)},
        )
        read = await graphql.post("{ clicks { totalCount } }")
    for response in (recorded, read):
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "STORE_UNAVAILABLE", error
        assert "Traceback" not in response.text
    assert await Conversion.count() == 0


async def test_an_unreachable_key_store_answers_503_with_retry_after(
    graphql: GraphQL, db: Engine, tmp_path: Path
) -> None:
    with tables_bound_to(unreachable_engine(db, tmp_path), ApiKey):
        response = await graphql.post("{ __typename }")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text
