"""`subscription { conversionRecorded(filter) }` over graphql-transport-ws at /graphql
(SPEC part two, "Reports and live updates for dashboards"), on both engines, through a
real websocket to the app served in the test's loop. The partner scope is in
tests/test_partner_scope.py; two served workers and the latency in
tests/test_live_feed_served.py."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from api.settings import Settings
from models.conversions.outcomes import Duplicate, Recorded
from models.keys import Scope, revoke_api_key
from models.reports.live import live_feed, open_subscriptions
from models.store.engine import PostgresStore, current_engine, is_postgres
from models.store.notifications import (
    CONVERSION_CHANNEL,
    LISTENER_APPLICATION_NAME,
    PostgresNotices,
)
from models.store.tables import ApiKey, Conversion
from models.writes import write_batch
from schema import sockets
from tests.graphql_client import issue_key
from tests.live_client import (
    key_payload,
    live_socket,
    refused_with,
    served_here,
    subscribed_here,
)
from tests.support import count_conversions, new_click, validated_report
from tests.test_docs import REPO, fenced_blocks


@pytest.fixture
async def base_url(db: object, app: Litestar) -> AsyncIterator[str]:
    async with served_here(app) as url:
        yield url


async def fire(client: httpx.AsyncClient, click_id: uuid.UUID, query: str) -> None:
    response = await client.get(f"/convert/{click_id}?{query}")
    assert response.status_code == 202, response.text


async def test_every_stored_conversion_arrives_once_and_repeats_and_tests_never(
    client: httpx.AsyncClient, base_url: str
) -> None:
    """Every conversion stored reaches the subscriber within a second, once; repeats and
    test fires store nothing and send nothing."""
    key = await issue_key(Scope.READ)
    click_id = await new_click()
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe()
        await subscribed_here(1)
        started = time.monotonic()
        await fire(client, click_id, "type=install")
        await fire(client, click_id, "type=install")  # a repeat
        await fire(client, click_id, "type=registration&test=true")
        await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
        await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
        await socket.read_until("1", 2, seconds=1.0)
        assert time.monotonic() - started < 1.0
        assert await socket.read_for(0.5) is None  # nothing else comes, the socket stays
    install, deposit = socket.received["1"]
    assert (install["type"], install["click"]["id"]) == ("INSTALL", str(click_id))
    assert (deposit["type"], deposit["amount"], deposit["currency"]) == ("DEPOSIT", "40.00", "EUR")
    assert deposit["transactionId"] == "t1"
    assert await count_conversions() == 2
    assert socket.errors == {}


async def test_the_filter_is_the_conversions_querys(
    client: httpx.AsyncClient, base_url: str
) -> None:
    key = await issue_key(Scope.READ)
    click_id, other_click = await new_click(), await new_click()
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe("deposits", {"filter": {"type": "DEPOSIT", "currency": "USD"}})
        await socket.subscribe("click", {"filter": {"clickId": str(other_click)}})
        await subscribed_here(2)
        await fire(client, click_id, "type=install")
        await fire(client, click_id, "type=deposit&amount=1&currency=eur&transaction_id=a")
        await fire(client, click_id, "type=deposit&amount=2&currency=usd&transaction_id=b")
        await fire(client, other_click, "type=registration")
        await socket.read_until("deposits", 1)
        await socket.read_until("click", 1)
        assert await socket.read_for(0.4) is None
    [deposit] = socket.received["deposits"]
    assert (deposit["transactionId"], deposit["currency"]) == ("b", "USD")
    [registration] = socket.received["click"]
    assert registration["click"]["id"] == str(other_click)


async def test_a_filter_no_query_can_take_is_a_bad_user_input(base_url: str) -> None:
    key = await issue_key(Scope.READ)
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe("1", {"filter": {"playerId": "nul\x00"}})
        await socket.read_for(0.5)
    [error] = socket.errors["1"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["field"] == "playerId"
    assert open_subscriptions() == 0


async def test_a_missing_bad_or_revoked_key_closes_the_socket_with_4401(base_url: str) -> None:
    """A bad or missing key closes the socket (4401: unauthenticated)."""
    revoked = await issue_key(Scope.ADMIN)
    [row] = await ApiKey.select(ApiKey.id)
    await revoke_api_key(row["id"])
    for payload in (
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer not-a-key"},
        key_payload(revoked),
    ):
        closed = await refused_with(base_url, {"type": "connection_init", "payload": payload})
        assert closed.code == 4401, (payload, closed)
        assert "key" in closed.reason
    # A subscribe before connection_init: Strawberry's own 4401.
    assert (await refused_with(base_url, None)).code == 4401
    assert open_subscriptions() == 0


async def test_a_subscriber_that_falls_behind_is_closed_and_the_pixel_never_waits(
    db: object, client: httpx.AsyncClient
) -> None:
    """Slow subscribers never slow the pixel: past its queue's bound, a subscriber is
    closed with 1013 and a reason."""
    settings = Settings.from_env({"GRAPHQL_SUBSCRIPTION_QUEUE_SIZE": "3"})
    key = await issue_key(Scope.READ)
    clicks = [await new_click() for _ in range(20)]
    async with (
        served_here(create_app(settings)) as base_url,
        live_socket(base_url, key_payload(key)) as socket,
    ):
        await socket.subscribe()
        await subscribed_here(1)
        # The subscriber reads nothing while twenty installs are stored together.
        started = time.monotonic()
        await asyncio.gather(*(fire(client, click_id, "type=install") for click_id in clicks))
        assert time.monotonic() - started < 5
        closed = await socket.read_for(5)
    assert closed is not None
    assert closed.code == 1013
    assert "fell behind" in closed.reason
    assert len(socket.received.get("1", [])) <= 3
    assert open_subscriptions() == 0


async def test_the_feed_listens_only_while_it_has_subscribers(base_url: str) -> None:
    key = await issue_key(Scope.READ)
    assert live_feed().source is None
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe()
        await subscribed_here(1)
        assert live_feed().source is not None
    await subscribed_here(0)
    assert live_feed().source is None


async def _listeners() -> list[int]:
    rows = await ApiKey.raw(
        "SELECT pid FROM pg_stat_activity WHERE application_name = {} "
        "AND datname = current_database()",
        LISTENER_APPLICATION_NAME,
    )
    return [row["pid"] for row in rows]


async def test_the_listening_connection_comes_back_after_it_is_killed(
    client: httpx.AsyncClient, base_url: str
) -> None:
    """PostgreSQL: the dedicated listening connection reconnects after its backend is
    terminated, and what was stored meanwhile arrives, once."""
    if not is_postgres(current_engine()):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    key = await issue_key(Scope.READ)
    first, second, third = await new_click(), await new_click(), await new_click()
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe()
        await subscribed_here(1)
        source = live_feed().source
        assert isinstance(source, PostgresNotices)
        [listener] = await _listeners()
        assert listener == source.backend_pid
        await fire(client, first, "type=install")
        await socket.read_until("1", 1)
        await ApiKey.raw("SELECT pg_terminate_backend({})", listener)
        # Stored while nobody may be listening: found again after the reconnect.
        await fire(client, second, "type=install")
        await socket.read_until("1", 2)
        for _ in range(100):
            if (pids := await _listeners()) and pids != [listener]:
                break
            await asyncio.sleep(0.05)
        assert pids != [listener]
        assert len(pids) == 1
        await fire(client, third, "type=install")
        await socket.read_until("1", 3)
        assert await socket.read_for(0.3) is None
    clicks = [conversion["click"]["id"] for conversion in socket.received["1"]]
    assert clicks == [str(first), str(second), str(third)]


async def test_notices_leave_on_commit_with_ids_only_in_chunks(db: object) -> None:
    """PostgreSQL: the ids ride the batch's own transaction, under the 8,000-byte payload
    limit; a batch undone (a repeat the unique index found) notifies nothing of its own."""
    engine = current_engine()
    if not isinstance(engine, PostgresStore):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    notices: list[str] = []
    listener = await asyncpg.connect(engine.config["dsn"])
    try:
        await listener.add_listener(
            CONVERSION_CHANNEL, lambda _c, _p, _ch, payload: notices.append(payload)
        )
        click_id = await new_click()
        await write_batch([validated_report(click_id, "deposit", "stored")])
        batch = [validated_report(click_id, "deposit", f"t{number}") for number in range(150)]
        # The stored deposit again: the batch is rolled back, then redone knowing it.
        outcomes = await write_batch([*batch, validated_report(click_id, "deposit", "stored")])
        assert [type(outcome) for outcome in outcomes] == [Recorded] * 150 + [Duplicate]
        for _ in range(100):
            if sum(len(payload.split(",")) for payload in notices) >= 151:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await listener.close()
    assert all(len(payload.encode()) < 8000 for payload in notices)
    ids = [uuid.UUID(id_) for payload in notices for id_ in payload.split(",")]
    assert len(notices) == 3  # one for the first batch, two for the 150 of the second
    stored = await Conversion.select(Conversion.id).where(Conversion.click == click_id)
    assert sorted(ids) == sorted(row["id"] for row in stored)


def _python_example() -> str:
    """The Python block of docs/dashboards.md's live feed section."""
    dashboards = REPO / "docs" / "dashboards.md"
    section = dashboards.read_text().split("## Live feed: conversionRecorded")[1].split("\n## ")[0]
    [block] = [
        block
        for block in fenced_blocks(dashboards)
        if block.label == "python" and block.text in section
    ]
    return block.text


async def test_the_python_example_of_the_docs_runs_as_written(
    client: httpx.AsyncClient, base_url: str, tmp_path: Path
) -> None:
    example = tmp_path / "live_feed.py"
    example.write_text(_python_example())
    key = await issue_key(Scope.READ)
    click_id = await new_click()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(example),
        env={
            **os.environ,
            "CONVERSIONS_WS_URL": f"{base_url}/graphql",
            "CONVERSIONS_API_KEY": key,
        },
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await subscribed_here(1)
        await fire(client, click_id, "type=install")  # not a deposit: filtered out
        await fire(client, click_id, "type=deposit&amount=12.50&currency=gbp&transaction_id=d")
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=5)
    finally:
        process.terminate()
        await process.wait()
    conversion = json.loads(line)["data"]["conversionRecorded"]
    assert (conversion["type"], conversion["amount"], conversion["currency"]) == (
        "DEPOSIT",
        "12.50",
        "GBP",
    )
    assert conversion["click"]["id"] == str(click_id)


async def test_queries_and_mutations_over_the_socket_keep_to_its_key(base_url: str) -> None:
    """The socket's key is the key of everything sent over it: a read key may query,
    and may not record."""
    key = await issue_key(Scope.READ)
    click_id = await new_click()
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe("query", query="query { conversions { totalCount } }")
        await socket.subscribe(
            "mutation",
            query=f'mutation {{ recordConversion(input: {{clickId: "{click_id}", type: INSTALL}})'
            " { __typename } }",
        )
        await socket.read_for(1)
    assert socket.received["query"] == [{"totalCount": 0}]
    assert socket.errors.keys() == {"mutation"}
    [error] = socket.errors["mutation"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert await count_conversions() == 0


async def test_a_socket_closes_4401_once_its_key_is_revoked(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockets, "KEY_CHECK_SECONDS", 0.1)
    key = await issue_key(Scope.READ)
    [row] = await ApiKey.select(ApiKey.id)
    async with live_socket(base_url, key_payload(key)) as socket:
        await socket.subscribe()
        assert await socket.read_for(0.3) is None  # checked, and still valid
        await revoke_api_key(row["id"])
        closed = await socket.read_for(5)
    assert closed is not None
    assert (closed.code, closed.reason) == (4401, "the API key was revoked")
    await subscribed_here(0)
