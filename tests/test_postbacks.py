"""Partner postbacks (SPEC.md "Partner postbacks"), on the engine DATABASE_URL names:
rules over GraphQL, the outbox written with the conversion, and the dispatcher sending
to a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from models.clicks.service import NewClick, create_click
from models.keys import Scope
from models.partners.partners import create_partner
from models.postbacks.dispatcher import Dispatcher, DispatchPolicy
from models.postbacks.outbox import (
    enqueue_in_postgres_transaction,
    enqueue_in_sqlite_transaction,
)
from models.postbacks.sending import SendPolicy
from models.store import outbox_sql
from models.store.engine import SQLiteStore, current_engine
from models.store.tables import DeliveryStatus, PostbackDelivery, PostbackEvent
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, graphql_as
from tests.postback_receiver import Receiver, receiver
from tests.served_app import served_app

ALLOW_PRIVATE = SendPolicy(timeout_seconds=2.0, allow_private_networks=True)
POLICY = DispatchPolicy(send=ALLOW_PRIVATE, retry_base_seconds=30, max_attempts=10)

RULE_FIELDS = "id events urlTemplate enabled disabledReason createdAt partner { id } offer { id }"
CREATE_RULE = (
    "mutation ($input: CreatePostbackRuleInput!) { createPostbackRule(input: $input) {"
    f" __typename ... on PostbackRuleSaved {{ rule {{ {RULE_FIELDS} }} }}"
    " ... on ValidationErrors { errors { field code message } } } }"
)
UPDATE_RULE = (
    "mutation ($id: UUID!, $input: UpdatePostbackRuleInput!) {"
    " updatePostbackRule(id: $id, input: $input) {"
    f" __typename ... on PostbackRuleSaved {{ rule {{ {RULE_FIELDS} }} }}"
    " ... on PostbackRuleNotFound { id }"
    " ... on ValidationErrors { errors { field code message } } } }"
)
DELIVERY_FIELDS = (
    "id event url status attempts lastStatusCode lastError nextAttemptAt deliveredAt createdAt"
    " rule { id } conversion { id }"
)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
            "POSTBACK_TIMEOUT_SECONDS": "2",
        }
    )


@pytest.fixture
async def partner_receiver() -> AsyncIterator[Receiver]:
    async with receiver() as found:
        yield found


@dataclass(frozen=True)
class Shop:
    partner_id: uuid.UUID
    offer_id: uuid.UUID
    link_id: uuid.UUID


async def new_shop(name: str = "net") -> Shop:
    partner = await create_partner(name)
    offer = await create_offer(f"{name} offer", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    return Shop(partner.id, offer.id, link.id)


async def click_of(shop: Shop, **fields: Any) -> uuid.UUID:
    return await create_click(
        NewClick(
            tracking_link_id=shop.link_id,
            created_at=datetime.now(UTC) - timedelta(hours=1),
            **fields,
        )
    )


async def create_rule(
    admin: GraphQL, shop: Shop, events: list[str], url: str, *, offer: bool = False
) -> dict[str, Any]:
    data = await admin.data(
        CREATE_RULE,
        {
            "input": {
                "partnerId": str(shop.partner_id),
                "offerId": str(shop.offer_id) if offer else None,
                "events": events,
                "urlTemplate": url,
            }
        },
    )
    result = data["createPostbackRule"]
    assert result["__typename"] == "PostbackRuleSaved", result
    return result["rule"]


async def fire(client: httpx.AsyncClient, click_id: uuid.UUID, query: str) -> None:
    response = await client.get(f"/convert/{click_id}?{query}")
    assert response.status_code == 202, response.text


async def deliveries() -> list[dict[str, Any]]:
    return await PostbackDelivery.select().order_by(PostbackDelivery.created_at)


def queued(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(str(row["rule"]), str(row["conversion"]), row["event"]) for row in rows}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.ADMIN)


# --- the outbox, written with the conversion -----------------------------------------


async def test_each_rule_gets_one_delivery_per_conversion_and_event(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop, other = await new_shop("ours"), await new_shop("theirs")
    both = await create_rule(admin, shop, ["DEPOSIT", "FIRST_DEPOSIT"], "https://p.example/a")
    deposit = await create_rule(admin, shop, ["DEPOSIT"], "https://p.example/b")
    first_only = await create_rule(
        admin, shop, ["FIRST_DEPOSIT", "INSTALL"], "https://p.example/c", offer=True
    )
    disabled = await create_rule(admin, shop, ["DEPOSIT", "INSTALL"], "https://p.example/d")
    await admin.data(UPDATE_RULE, {"id": disabled["id"], "input": {"enabled": False}})
    await create_rule(admin, other, ["DEPOSIT", "INSTALL"], "https://p.example/e")
    click_id = await click_of(shop)

    await fire(client, click_id, "type=install")
    await fire(client, click_id, "type=deposit&amount=40&currency=usd&transaction_id=t1")
    await fire(client, click_id, "type=deposit&amount=10&currency=usd&transaction_id=t2")
    # Repeats, test fires and a stray click queue nothing.
    await fire(client, click_id, "type=deposit&amount=40&currency=usd&transaction_id=t1")
    await fire(client, click_id, "type=deposit&amount=5&currency=usd&transaction_id=t3&test=true")

    conversions = {
        row["transaction_id"] or row["type"]: str(row["id"])
        for row in await PostbackDelivery.raw("SELECT id, type, transaction_id FROM conversion")
    }
    rows = await deliveries()
    assert queued(rows) == {
        (first_only["id"], conversions["install"], "install"),
        (both["id"], conversions["t1"], "first_deposit"),
        (deposit["id"], conversions["t1"], "deposit"),
        (first_only["id"], conversions["t1"], "first_deposit"),
        (both["id"], conversions["t2"], "deposit"),
        (deposit["id"], conversions["t2"], "deposit"),
    }
    assert len(rows) == 6
    assert {row["status"] for row in rows} == {"pending"}
    assert {row["attempts"] for row in rows} == {0}


async def test_the_status_seam_queues_in_the_callers_transaction(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop = await new_shop()
    approved = await create_rule(admin, shop, ["APPROVED"], "https://p.example/a")
    await create_rule(admin, shop, ["REVERSED"], "https://p.example/r")
    click_id = await click_of(shop)
    await fire(client, click_id, "type=install")
    [conversion_id] = await PostbackDelivery.raw("SELECT id FROM conversion")
    ids = [uuid.UUID(str(conversion_id["id"]))]

    async def enqueue_twice() -> None:
        engine = current_engine()
        if isinstance(engine, SQLiteStore):

            def work(connection: Any) -> None:
                for _ in range(2):
                    enqueue_in_sqlite_transaction(connection, ids, PostbackEvent.APPROVED)

            await engine.run_in_write_transaction(work)
        else:
            async with engine.transaction() as transaction:
                for _ in range(2):
                    await enqueue_in_postgres_transaction(
                        transaction.connection, ids, PostbackEvent.APPROVED
                    )

    await enqueue_twice()
    assert queued(await deliveries()) == {(approved["id"], str(ids[0]), "approved")}
    with pytest.raises(ValueError, match="batch"):
        enqueue_in_sqlite_transaction(None, ids, PostbackEvent.DEPOSIT)  # type: ignore[arg-type]


# --- the dispatcher ----------------------------------------------------------------------


async def test_a_delivery_is_sent_with_every_macro_spelled_exactly(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    macros = [
        "click_id", "conversion_id", "event", "type", "status", "transaction_id", "amount",
        "currency", "occurred_at", "offer_id", "partner_id", "tracking_link_id",
        "s1", "s2", "s3", "s4", "s5", "delivery_id",
    ]  # fmt: skip
    query = "&".join(f"{name}={{{name}}}" for name in macros)
    await create_rule(admin, shop, ["FIRST_DEPOSIT"], partner_receiver.url(f"/ok?{query}"))
    click_id = await click_of(shop, s1="a b&c=d/é")
    at = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    await fire(
        client,
        click_id,
        "type=deposit&amount=40&currency=usd&transaction_id=t%201"
        f"&time={quote(at.astimezone(timezone(timedelta(hours=1))).isoformat())}"
        "&player_id=secret-player",
    )
    assert await Dispatcher(POLICY).run_once() == 1

    [request] = partner_receiver.received
    [row] = await deliveries()
    [conversion] = await PostbackDelivery.raw("SELECT id FROM conversion")
    assert request.headers["x-delivery-id"] == str(row["id"])
    sent = {name: values[0] if values else "" for name, values in request.query.items()}
    assert sent == {
        "click_id": str(click_id),
        "conversion_id": str(conversion["id"]),
        "event": "first_deposit",
        "type": "deposit",
        "status": "approved",
        "transaction_id": "t 1",
        "amount": "40.00",
        "currency": "USD",
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offer_id": str(shop.offer_id),
        "partner_id": str(shop.partner_id),
        "tracking_link_id": str(shop.link_id),
        "s1": "a b&c=d/é",
        "delivery_id": str(row["id"]),
    }
    assert "secret-player" not in str(request.query)
    assert row["status"] == "delivered"
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200
    assert row["delivered_at"] is not None
    # Percent-encoded: the sub id cannot add a parameter or a path segment.
    assert "s1=a%20b%26c%3Dd%2F%C3%A9" in row["url"]


@pytest.mark.parametrize(
    ("path", "status", "attempts", "code", "error", "retry_in"),
    [
        ("/fail", "pending", 1, 500, "http_500", 30),
        ("/busy", "pending", 1, 429, "http_429", 120),
        ("/missing", "failed", 1, 404, "http_404", None),
        ("/moved", "failed", 1, 302, "http_302", None),
        ("/big", "delivered", 1, 200, None, None),
        ("/slow", "pending", 1, None, "timeout", 30),
    ],
)
async def test_answers_are_retried_or_fail_at_once(
    client: httpx.AsyncClient,
    admin: GraphQL,
    partner_receiver: Receiver,
    path: str,
    status: str,
    attempts: int,
    code: int | None,
    error: str | None,
    retry_in: int | None,
) -> None:
    shop = await new_shop()
    await create_rule(admin, shop, ["INSTALL"], partner_receiver.url(path))
    await fire(client, await click_of(shop), "type=install")
    policy = replace(POLICY, send=replace(ALLOW_PRIVATE, timeout_seconds=0.5))
    before = datetime.now(UTC)
    await Dispatcher(policy).run_once()
    [row] = await deliveries()
    assert (row["status"], row["attempts"], row["last_status_code"], row["last_error"]) == (
        status,
        attempts,
        code,
        error,
    )
    # A redirect is never followed: the receiver saw one request.
    assert len(partner_receiver.received) == 1
    if retry_in is not None:
        delay = (row["next_attempt_at"] - before).total_seconds()
        assert retry_in - 1 <= delay <= retry_in + 5


async def test_backoff_doubles_and_the_last_attempt_fails(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    await create_rule(admin, shop, ["INSTALL"], partner_receiver.url("/fail"))
    await fire(client, await click_of(shop), "type=install")
    # Measured from before the attempt, so each delay includes the send: on a loaded
    # machine that can be tens of milliseconds, so the base must dwarf it.
    policy = replace(POLICY, retry_base_seconds=0.25, max_attempts=3)
    delays = []
    for _ in range(3):
        await PostbackDelivery.update({PostbackDelivery.next_attempt_at: datetime.now(UTC)}).where(
            PostbackDelivery.status == "pending"
        )
        before = datetime.now(UTC)
        assert await Dispatcher(policy).run_once() == 1
        [row] = await deliveries()
        delays.append((row["next_attempt_at"] - before).total_seconds())
    assert row["status"] == "failed"
    assert row["attempts"] == 3
    assert 0.25 <= delays[0] < 0.5 <= delays[1] <= 2.0
    assert len(partner_receiver.received) == 3


async def test_a_private_address_is_refused_at_send_time(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    # A host name passes when saved: it is resolved when sent.
    await create_rule(admin, shop, ["INSTALL"], f"http://localhost:{partner_receiver.port}/ok")
    await fire(client, await click_of(shop), "type=install")
    await Dispatcher(replace(POLICY, send=SendPolicy())).run_once()
    [row] = await deliveries()
    assert (row["status"], row["last_error"], row["attempts"]) == ("failed", "blocked_address", 1)
    assert partner_receiver.received == []


async def test_a_rule_whose_last_10_deliveries_failed_is_disabled(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    rule = await create_rule(admin, shop, ["DEPOSIT"], partner_receiver.url("/missing"))
    click_id = await click_of(shop)
    for number in range(11):
        await fire(client, click_id, f"type=deposit&amount=1&currency=usd&transaction_id=t{number}")
        # One at a time, so the 11th finds the rule already disabled.
        await Dispatcher(replace(POLICY, batch_size=1)).run_once()
    data = await admin.data(
        "query ($id: UUID!) { partner(id: $id) { postbackRules { enabled disabledReason } } }",
        {"id": str(shop.partner_id)},
    )
    [shown] = data["partner"]["postbackRules"]
    assert shown == {"enabled": False, "disabledReason": "its last 10 deliveries all failed"}
    assert len(partner_receiver.received) == 10
    # Nothing is queued for a disabled rule; enabling it clears the reason.
    before = len(await deliveries())
    await fire(client, click_id, "type=deposit&amount=1&currency=usd&transaction_id=later")
    assert len(await deliveries()) == before
    data = await admin.data(UPDATE_RULE, {"id": rule["id"], "input": {"enabled": True}})
    saved = data["updatePostbackRule"]["rule"]
    assert (saved["enabled"], saved["disabledReason"]) == (True, None)


async def test_a_delivery_interrupted_by_a_stop_is_sent_after_restart(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    rule = await create_rule(admin, shop, ["INSTALL"], partner_receiver.url("/slow"))
    await fire(client, await click_of(shop), "type=install")
    first = Dispatcher(replace(POLICY, poll_seconds=0.05))
    await first.start()
    await asyncio.wait_for(partner_receiver.arrived.wait(), timeout=5)
    await first.stop()  # mid-send: nothing is stored, and the claim is released
    [row] = await deliveries()
    assert (row["status"], row["attempts"], row["claim"]) == ("pending", 0, None)
    await admin.data(
        UPDATE_RULE, {"id": rule["id"], "input": {"urlTemplate": partner_receiver.url("/ok")}}
    )
    assert await Dispatcher(POLICY).run_once() == 1
    [row] = await deliveries()
    assert row["status"] == "delivered"
    assert [request.path for request in partner_receiver.received] == ["/slow", "/ok"]


async def test_a_crashed_dispatchers_claim_runs_out_and_its_delivery_is_sent(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    await create_rule(admin, shop, ["INSTALL"], partner_receiver.url("/ok"))
    await fire(client, await click_of(shop), "type=install")
    now = datetime.now(UTC)
    # A worker claims, then dies without a word: nothing releases its claim.
    crashed = await outbox_sql.claim_due(
        now=now, claimed_until=now + timedelta(seconds=0.3), limit=10, claim=uuid.uuid4()
    )
    assert len(crashed) == 1
    assert await Dispatcher(POLICY).run_once() == 0
    await asyncio.sleep(0.35)
    assert await Dispatcher(POLICY).run_once() == 1
    [row] = await deliveries()
    assert row["status"] == "delivered"
    assert len(partner_receiver.received) == 1


async def test_two_dispatchers_never_send_one_delivery_twice(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    await create_rule(admin, shop, ["DEPOSIT"], partner_receiver.url("/ok"))
    click_id = await click_of(shop)
    for number in range(40):
        await fire(client, click_id, f"type=deposit&amount=1&currency=usd&transaction_id=t{number}")
    ones, twos = (
        Dispatcher(replace(POLICY, batch_size=7)),
        Dispatcher(replace(POLICY, batch_size=7)),
    )
    while await PostbackDelivery.count().where(PostbackDelivery.status == "pending"):
        await asyncio.gather(ones.run_once(), twos.run_once())
    await ones.stop()
    await twos.stop()
    sent = partner_receiver.delivery_ids()
    assert len(sent) == len(set(sent)) == 40


async def test_a_claim_keeps_a_delivery_from_others_until_its_lease_runs_out(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop = await new_shop()
    await create_rule(admin, shop, ["INSTALL"], "https://p.example/a")
    await fire(client, await click_of(shop), "type=install")
    now = datetime.now(UTC)
    claimed = await outbox_sql.claim_due(
        now=now, claimed_until=now + timedelta(minutes=1), limit=10, claim=uuid.uuid4()
    )
    assert len(claimed) == 1
    again = await outbox_sql.claim_due(
        now=now, claimed_until=now + timedelta(minutes=1), limit=10, claim=uuid.uuid4()
    )
    assert again == []
    later = now + timedelta(minutes=2)
    assert (
        len(
            await outbox_sql.claim_due(
                now=later, claimed_until=later + timedelta(minutes=1), limit=10, claim=uuid.uuid4()
            )
        )
        == 1
    )


async def test_two_served_workers_send_each_delivery_once(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver, tmp_path: Path
) -> None:
    """Two `conversions serve` processes on one store, each with the dispatcher its
    lifespan starts: every delivery arrives, and none twice."""
    shop = await new_shop()
    await create_rule(admin, shop, ["DEPOSIT"], partner_receiver.url("/ok"))
    click_id = await click_of(shop)
    for number in range(30):
        await fire(client, click_id, f"type=deposit&amount=1&currency=usd&transaction_id=t{number}")
    environment = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        "POSTBACK_POLL_SECONDS": "0.05",
    }
    with (
        served_app(environment, tmp_path / "one.log"),
        served_app(environment, tmp_path / "two.log"),
    ):
        for _ in range(200):
            if len(partner_receiver.received) >= 30:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time for a duplicate to show, were there one
    sent = partner_receiver.delivery_ids()
    assert len(sent) == len(set(sent)) == 30
    assert await PostbackDelivery.count().where(PostbackDelivery.status == "delivered") == 30


async def test_a_served_worker_restarted_mid_send_sends_the_delivery(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver, tmp_path: Path
) -> None:
    """SIGTERM while a delivery is in flight, as a deploy does; the next process sends it."""
    shop = await new_shop()
    rule = await create_rule(admin, shop, ["INSTALL"], partner_receiver.url("/slow"))
    await fire(client, await click_of(shop), "type=install")
    environment = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        "POSTBACK_POLL_SECONDS": "0.05",
    }
    with served_app(environment, tmp_path / "before.log"):
        await asyncio.wait_for(partner_receiver.arrived.wait(), timeout=10)
    [row] = await deliveries()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    await admin.data(
        UPDATE_RULE, {"id": rule["id"], "input": {"urlTemplate": partner_receiver.url("/ok")}}
    )
    partner_receiver.arrived.clear()
    with served_app(environment, tmp_path / "after.log"):
        await asyncio.wait_for(partner_receiver.arrived.wait(), timeout=10)
        for _ in range(100):
            [row] = await deliveries()
            if row["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
    assert row["status"] == "delivered"
    assert [request.path for request in partner_receiver.received] == ["/slow", "/ok"]


# --- rules over GraphQL ------------------------------------------------------------------


async def test_a_rule_is_validated_when_saved_naming_every_field(
    admin: GraphQL, settings: Settings
) -> None:
    shop = await new_shop()
    data = await admin.data(
        CREATE_RULE,
        {
            "input": {
                "partnerId": str(uuid.uuid4()),
                "offerId": str(uuid.uuid4()),
                "events": [],
                "urlTemplate": "ftp://p.example/?c={click_id}&x={player_id}",
            }
        },
    )
    errors = data["createPostbackRule"]["errors"]
    assert {(error["field"], error["code"]) for error in errors} == {
        ("partnerId", "not_found"),
        ("offerId", "not_found"),
        ("events", "required"),
        ("urlTemplate", "unknown_macro"),
        ("urlTemplate", "invalid_url"),
    }
    assert shop  # the partner exists; the id given did not name it


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "127.0.0.1", "169.254.169.254", "[::1]", "[::ffff:192.168.0.1]"]
)
async def test_a_literal_private_address_is_refused_unless_allowed(
    client: httpx.AsyncClient, host: str
) -> None:
    shop = await new_shop()
    strict = create_app(Settings.from_env({"DATABASE_URL": _database_url()}))
    transport = httpx.ASGITransport(app=strict)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver"
    ) as strict_client:
        admin = await graphql_as(strict_client, Scope.ADMIN)
        variables = {
            "input": {
                "partnerId": str(shop.partner_id),
                "events": ["INSTALL"],
                "urlTemplate": f"http://{host}/pb",
            }
        }
        data = await admin.data(CREATE_RULE, variables)
        [error] = data["createPostbackRule"]["errors"]
        assert (error["field"], error["code"]) == ("urlTemplate", "blocked_address")
    allowed = await graphql_as(client, Scope.ADMIN)
    data = await allowed.data(CREATE_RULE, variables)
    assert data["createPostbackRule"]["__typename"] == "PostbackRuleSaved"


def _database_url() -> str:
    return os.environ["DATABASE_URL"]


async def test_a_partner_key_manages_only_its_own_rules(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    ours, theirs = await new_shop("ours"), await new_shop("theirs")
    their_rule = await create_rule(admin, theirs, ["INSTALL"], "https://p.example/t")
    partner = await graphql_as(client, Scope.WRITE, ours.partner_id)
    own = await create_rule(partner, ours, ["INSTALL"], "https://p.example/o")
    data = await partner.data(
        CREATE_RULE,
        {
            "input": {
                "partnerId": str(theirs.partner_id),
                "events": ["INSTALL"],
                "urlTemplate": "https://p.example/x",
            }
        },
    )
    assert [e["code"] for e in data["createPostbackRule"]["errors"]] == ["not_found"]
    data = await partner.data(UPDATE_RULE, {"id": their_rule["id"], "input": {"enabled": False}})
    assert data["updatePostbackRule"] == {
        "__typename": "PostbackRuleNotFound",
        "id": their_rule["id"],
    }
    deleted = await partner.data(
        "mutation ($id: UUID!) { deletePostbackRule(id: $id) { __typename } }",
        {"id": own["id"]},
    )
    assert deleted["deletePostbackRule"]["__typename"] == "PostbackRuleDeleted"
    # An unbound write key is neither admin nor the partner's own.
    unbound = await graphql_as(client, Scope.WRITE)
    [error] = await unbound.errors(
        CREATE_RULE,
        {
            "input": {
                "partnerId": str(ours.partner_id),
                "events": ["INSTALL"],
                "urlTemplate": "https://p.example/x",
            }
        },
    )
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_a_test_fire_sends_one_sample_and_stores_nothing(
    admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    rule = await create_rule(
        admin, shop, ["FIRST_DEPOSIT"], partner_receiver.url("/ok?e={event}&a={amount}")
    )
    data = await admin.data(
        "mutation ($id: UUID!) { testPostbackRule(id: $id) { url statusCode durationMs error } }",
        {"id": rule["id"]},
    )
    attempt = data["testPostbackRule"]
    assert attempt["statusCode"] == 200
    assert attempt["error"] is None
    assert attempt["url"] == partner_receiver.url("/ok?e=first_deposit&a=40.00")
    assert len(partner_receiver.received) == 1
    assert await deliveries() == []


async def test_deliveries_are_listed_in_keyset_pages_with_filters(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await new_shop()
    ok = await create_rule(admin, shop, ["DEPOSIT"], partner_receiver.url("/ok"))
    failing = await create_rule(admin, shop, ["DEPOSIT"], partner_receiver.url("/missing"))
    click_id = await click_of(shop)
    for number in range(3):
        await fire(client, click_id, f"type=deposit&amount=1&currency=usd&transaction_id=t{number}")
    await Dispatcher(POLICY).run_once()
    query = (
        "query ($filter: PostbackDeliveryFilter, $after: String) {"
        " postbackDeliveries(filter: $filter, first: 2, after: $after) {"
        f" totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {DELIVERY_FIELDS} }} }}"
        " } }"
    )
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        data = await admin.data(
            query, {"filter": {"partnerId": str(shop.partner_id)}, "after": after}
        )
        page = data["postbackDeliveries"]
        assert page["totalCount"] == 6
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len({node["id"] for node in seen}) == 6
    failed = await admin.data(query, {"filter": {"ruleId": failing["id"], "status": "FAILED"}})
    nodes = [edge["node"] for edge in failed["postbackDeliveries"]["edges"]]
    assert failed["postbackDeliveries"]["totalCount"] == 3
    assert {(n["status"], n["lastStatusCode"], n["lastError"]) for n in nodes} == {
        ("FAILED", 404, "http_404")
    }
    delivered = await admin.data(query, {"filter": {"ruleId": ok["id"], "status": "DELIVERED"}})
    assert delivered["postbackDeliveries"]["totalCount"] == 3
    one = seen[0]
    by_conversion = await admin.data(query, {"filter": {"conversionId": one["conversion"]["id"]}})
    assert by_conversion["postbackDeliveries"]["totalCount"] == 2
    # Deleting a rule deletes its deliveries.
    await admin.data(
        "mutation ($id: UUID!) { deletePostbackRule(id: $id) { __typename } }",
        {"id": failing["id"]},
    )
    assert len(await deliveries()) == 3
    assert DeliveryStatus.PENDING.value == "pending"
