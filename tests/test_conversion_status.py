"""Conversion statuses (SPEC.md "Conversion status"), on the engine DATABASE_URL names:
holdDeposits, setConversionStatus and its transitions, statusHistory, the postback
events a change queues in its transaction, and what a status never changes (the
first-deposit flag, what counts as a repeat)."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from api.settings import Settings
from models.conversions import status as statuses
from models.keys import Scope
from models.partners.partners import create_partner
from models.postbacks.dispatcher import Dispatcher
from models.store.engine import is_postgres
from models.store.tables import (
    Conversion,
    ConversionStatus,
    ConversionStatusChange,
    PostbackDelivery,
)
from models.tracking.links import create_tracking_link
from tests.graphql_client import GraphQL, graphql_as
from tests.postback_receiver import Receiver, receiver
from tests.test_graphql_performance import counted_statements
from tests.test_postbacks import POLICY, Shop, click_of, create_rule, fire, new_shop

CONVERSION_FIELDS = (
    "id type status isFirstDeposit statusHistory { from to reason changedAt changedBy }"
)
SET_STATUS = f"""
mutation ($input: SetConversionStatusInput!) {{
  setConversionStatus(input: $input) {{
    __typename
    ... on StatusChanged {{ conversion {{ {CONVERSION_FIELDS} }} }}
    ... on ConversionNotFound {{ id }}
    ... on TransitionNotAllowed {{ conversion {{ id status }} from to }}
  }}
}}
"""
CONVERSION = f"query ($id: UUID!) {{ conversion(id: $id) {{ {CONVERSION_FIELDS} }} }}"
CREATE_OFFER = """
mutation ($hold: Boolean!) {
  createOffer(input: {name: "held", landingUrl: "https://casino.example/", holdDeposits: $hold}) {
    id holdDeposits
  }
}
"""
UPDATE_OFFER = """
mutation ($id: UUID!, $hold: Boolean) {
  updateOffer(id: $id, input: {holdDeposits: $hold}) { id holdDeposits }
}
"""
ADMIN_KEY_NAME = f"test {Scope.ADMIN}"


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        {"DATABASE_URL": os.environ["DATABASE_URL"], "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true"}
    )


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.ADMIN)


@pytest.fixture
async def partner_receiver() -> AsyncIterator[Receiver]:
    async with receiver() as found:
        yield found


async def held_shop(admin: GraphQL) -> Shop:
    """A partner's link to an offer that holds deposits."""
    shop = await new_shop()
    data = await admin.data(UPDATE_OFFER, {"id": str(shop.offer_id), "hold": True})
    assert data["updateOffer"]["holdDeposits"] is True
    return shop


async def conversion_ids(click_id: uuid.UUID) -> dict[str, str]:
    """The click's conversions by transaction id (or type, without one)."""
    rows = await Conversion.select(Conversion.id, Conversion.type, Conversion.transaction_id).where(
        Conversion.click == click_id
    )
    return {row["transaction_id"] or row["type"]: str(row["id"]) for row in rows}


async def set_status(
    admin: GraphQL, ids: list[str], status: str, reason: str | None = None
) -> list[dict[str, Any]]:
    data = await admin.data(SET_STATUS, {"input": {"ids": ids, "status": status, "reason": reason}})
    results: list[dict[str, Any]] = data["setConversionStatus"]
    return results


async def conversion(admin: GraphQL, id_: str) -> dict[str, Any]:
    found: dict[str, Any] = (await admin.data(CONVERSION, {"id": id_}))["conversion"]
    return found


async def history_count() -> int:
    return await ConversionStatusChange.count()


# --- new conversions: APPROVED, or PENDING for a held offer's deposits --------------------


async def test_new_conversions_are_approved_and_held_deposits_pending(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    created = (await admin.data(CREATE_OFFER, {"hold": True}))["createOffer"]
    assert created["holdDeposits"] is True
    partner = await create_partner("held")
    link = await create_tracking_link(uuid.UUID(created["id"]), partner.id)
    held = Shop(partner.id, uuid.UUID(created["id"]), link.id)
    open_shop = await new_shop("open")
    for shop in (open_shop, held):
        click_id = await click_of(shop)
        await fire(client, click_id, "type=install")
        await fire(client, click_id, "type=registration")
        await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
        ids = await conversion_ids(click_id)
        statuses_seen = {key: (await conversion(admin, id_))["status"] for key, id_ in ids.items()}
        deposit = "PENDING" if shop is held else "APPROVED"
        assert statuses_seen == {"install": "APPROVED", "registration": "APPROVED", "t1": deposit}
        # Recording a conversion is not a change of its status.
        assert (await conversion(admin, ids["t1"]))["statusHistory"] == []
    # A click without a tracking link has no offer to hold its deposits.
    stray = await admin.data(
        'mutation { createClick(input: {playerId: "p"}) { id } }',
    )
    await fire(client, stray["createClick"]["id"], "type=deposit")
    [stray_deposit] = await conversion_ids(uuid.UUID(stray["createClick"]["id"]))
    assert await Conversion.select(Conversion.status).where(
        Conversion.click == stray["createClick"]["id"]
    ) == [{"status": "approved"}]
    assert stray_deposit == "deposit"
    assert await history_count() == 0


async def test_hold_deposits_is_read_when_the_deposit_arrives(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop = await new_shop()
    offer = await admin.data(
        "query ($id: UUID!) { offer(id: $id) { holdDeposits } }", {"id": str(shop.offer_id)}
    )
    assert offer == {"offer": {"holdDeposits": False}}
    click_id = await click_of(shop)
    await fire(client, click_id, "type=deposit&amount=10&currency=eur&transaction_id=before")
    await admin.data(UPDATE_OFFER, {"id": str(shop.offer_id), "hold": True})
    await fire(client, click_id, "type=deposit&amount=10&currency=eur&transaction_id=held")
    # Changing another field leaves holdDeposits as it is.
    kept = await admin.data(
        'mutation ($id: UUID!) { updateOffer(id: $id, input: {name: "renamed"}) { holdDeposits } }',
        {"id": str(shop.offer_id)},
    )
    assert kept == {"updateOffer": {"holdDeposits": True}}
    await admin.data(UPDATE_OFFER, {"id": str(shop.offer_id), "hold": False})
    await fire(client, click_id, "type=deposit&amount=10&currency=eur&transaction_id=after")
    # A test fire reports the status it would have had.
    recorded = await admin.data(
        "mutation ($click: UUID!) { recordConversion(input: {clickId: $click, type: DEPOSIT,"
        " test: true}) { ... on ConversionRecorded { conversion { status } } } }",
        {"click": str(click_id)},
    )
    assert recorded == {"recordConversion": {"conversion": {"status": "APPROVED"}}}
    ids = await conversion_ids(click_id)
    assert [
        (await conversion(admin, ids[key]))["status"] for key in ("before", "held", "after")
    ] == [
        "APPROVED",
        "PENDING",
        "APPROVED",
    ]


# --- setConversionStatus: the transitions -------------------------------------------------

ALL = [status.name for status in ConversionStatus]
ALLOWED = {
    ("PENDING", "APPROVED"),
    ("PENDING", "REJECTED"),
    ("APPROVED", "REJECTED"),
    ("APPROVED", "REVERSED"),
    ("REJECTED", "APPROVED"),
}
# How a held deposit reaches each status through allowed moves.
PATHS = {
    "PENDING": [],
    "APPROVED": ["APPROVED"],
    "REJECTED": ["REJECTED"],
    "REVERSED": ["APPROVED", "REVERSED"],
}


@pytest.mark.parametrize(("start", "target"), list(itertools.product(ALL, ALL)))
async def test_only_the_listed_transitions_are_allowed(
    client: httpx.AsyncClient, admin: GraphQL, start: str, target: str
) -> None:
    click_id = await click_of(await held_shop(admin))
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()
    for step in PATHS[start]:
        [result] = await set_status(admin, [id_], step)
        assert result["__typename"] == "StatusChanged"
    history_before = await history_count()

    [result] = await set_status(admin, [id_], target, "checked")

    if start == target:
        # Already there (REVERSED included): StatusChanged, and no new history entry.
        assert result["__typename"] == "StatusChanged"
        assert await history_count() == history_before
    elif (start, target) in ALLOWED:
        assert result["__typename"] == "StatusChanged"
        assert result["conversion"]["status"] == target
        assert result["conversion"]["statusHistory"][-1] == {
            "from": start,
            "to": target,
            "reason": "checked",
            "changedAt": result["conversion"]["statusHistory"][-1]["changedAt"],
            "changedBy": ADMIN_KEY_NAME,
        }
        assert await history_count() == history_before + 1
    else:
        assert result == {
            "__typename": "TransitionNotAllowed",
            "conversion": {"id": id_, "status": start},
            "from": start,
            "to": target,
        }
        assert await history_count() == history_before
    assert (await conversion(admin, id_))["status"] == (
        target if start == target or (start, target) in ALLOWED else start
    )


async def test_one_result_per_id_in_order(client: httpx.AsyncClient, admin: GraphQL) -> None:
    click_id = await click_of(await held_shop(admin))
    await fire(client, click_id, "type=install")
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    ids = await conversion_ids(click_id)
    install, deposit, nothing = ids["install"], ids["t1"], str(uuid.uuid4())

    results = await set_status(admin, [nothing, deposit, install, deposit, install], "APPROVED")

    assert [result["__typename"] for result in results] == [
        "ConversionNotFound",
        "StatusChanged",  # PENDING -> APPROVED
        "StatusChanged",  # already APPROVED
        # A repeated id finds the status its first mention set: already there.
        "StatusChanged",
        "StatusChanged",
    ]
    assert results[0] == {"__typename": "ConversionNotFound", "id": nothing}
    assert [result["conversion"]["id"] for result in results[1:]] == [
        deposit,
        install,
        deposit,
        install,
    ]
    # One change, however often the id was named; the install was not changed at all.
    deposit_history = (await conversion(admin, deposit))["statusHistory"]
    assert [(change["from"], change["to"]) for change in deposit_history] == [
        ("PENDING", "APPROVED")
    ]
    assert (await conversion(admin, install))["statusHistory"] == []
    # A later mention is judged against the earlier one's result: REVERSED is final.
    results = await set_status(admin, [deposit], "REVERSED")
    results = await set_status(admin, [deposit, install, deposit], "APPROVED")
    assert [result["__typename"] for result in results] == [
        "TransitionNotAllowed",
        "StatusChanged",
        "TransitionNotAllowed",
    ]
    assert await set_status(admin, [], "APPROVED") == []


async def test_status_history_is_oldest_first_with_reason_and_key_name(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    click_id = await click_of(await held_shop(admin))
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()
    other = await graphql_as(admin.client, Scope.ADMIN)
    await set_status(admin, [id_], "REJECTED", "  fraud check  ")
    await set_status(other, [id_], "APPROVED")
    await set_status(admin, [id_], "REVERSED", "chargeback 7731")

    history = (await conversion(admin, id_))["statusHistory"]
    assert [
        (change["from"], change["to"], change["reason"], change["changedBy"]) for change in history
    ] == [
        ("PENDING", "REJECTED", "fraud check", ADMIN_KEY_NAME),
        ("REJECTED", "APPROVED", None, ADMIN_KEY_NAME),
        ("APPROVED", "REVERSED", "chargeback 7731", ADMIN_KEY_NAME),
    ]
    times = [datetime.fromisoformat(change["changedAt"]) for change in history]
    assert times == sorted(times)
    assert all(at.tzinfo is not None and at <= datetime.now(UTC) for at in times)


async def test_status_history_of_a_page_costs_the_same_at_any_size(
    client: httpx.AsyncClient, admin: GraphQL, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await held_shop(admin)
    query = (
        "query ($first: Int) { conversions(first: $first) { edges { node { id status"
        " statusHistory { from to changedBy } } } } }"
    )
    counts = []
    for clicks in (2, 10):
        for _ in range(clicks):
            click_id = await click_of(shop)
            await fire(client, click_id, "type=deposit&amount=1&currency=eur&transaction_id=t")
            [id_] = (await conversion_ids(click_id)).values()
            await set_status(admin, [id_], "APPROVED")
        with counted_statements(db, monkeypatch) as statements:
            data = await admin.data(query, {"first": 50})
        edges = data["conversions"]["edges"]
        assert len(edges) == await Conversion.count()
        assert all(len(edge["node"]["statusHistory"]) == 1 for edge in edges)
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_a_partner_sees_the_history_of_its_own_conversions(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop = await held_shop(admin)
    click_id = await click_of(shop)
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()
    await set_status(admin, [id_], "APPROVED", "verified")
    partner = await graphql_as(client, Scope.WRITE, shop.partner_id)
    history = (await conversion(partner, id_))["statusHistory"]
    assert [(change["from"], change["to"]) for change in history] == [("PENDING", "APPROVED")]
    # Another partner's key does not see the conversion, so neither its history.
    other = await graphql_as(client, Scope.READ, (await new_shop("other")).partner_id)
    assert (await other.data(CONVERSION, {"id": id_}))["conversion"] is None


async def test_bad_input_names_every_field_and_changes_nothing(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    click_id = await click_of(await new_shop())
    await fire(client, click_id, "type=install")
    [id_] = (await conversion_ids(click_id)).values()
    too_many = [id_] + [str(uuid.uuid4()) for _ in range(statuses.MAX_IDS)]

    [error] = await admin.errors(
        SET_STATUS, {"input": {"ids": too_many, "status": "REVERSED", "reason": "bad\x00reason"}}
    )

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [(e["field"], e["code"]) for e in error["extensions"]["errors"]] == [
        ("ids", "too_many"),
        ("reason", "control_character"),
    ]
    assert "at most 1000" in error["extensions"]["errors"][0]["message"]
    assert (await conversion(admin, id_))["status"] == "APPROVED"
    assert await history_count() == 0
    # Exactly the limit is fine.
    results = await set_status(admin, too_many[: statuses.MAX_IDS], "REVERSED")
    assert len(results) == statuses.MAX_IDS
    assert results[0]["__typename"] == "StatusChanged"
    assert {result["__typename"] for result in results[1:]} == {"ConversionNotFound"}


async def test_write_and_read_keys_may_not_change_statuses(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    click_id = await click_of(await new_shop())
    await fire(client, click_id, "type=install")
    [id_] = (await conversion_ids(click_id)).values()
    for scope in (Scope.READ, Scope.WRITE):
        key = await graphql_as(client, scope)
        [error] = await key.errors(SET_STATUS, {"input": {"ids": [id_], "status": "REVERSED"}})
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await conversion(admin, id_))["status"] == "APPROVED"


# --- what a status never changes ----------------------------------------------------------


@pytest.mark.parametrize("status", ["REJECTED", "REVERSED"])
async def test_the_first_deposit_flag_never_moves(
    client: httpx.AsyncClient, admin: GraphQL, status: str
) -> None:
    click_id = await click_of(await new_shop())
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=first")
    first = (await conversion_ids(click_id))["first"]
    [result] = await set_status(admin, [first], status, "chargeback")
    assert result["conversion"]["status"] == status
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=second")
    ids = await conversion_ids(click_id)
    assert (await conversion(admin, ids["first"]))["isFirstDeposit"] is True
    assert (await conversion(admin, ids["second"]))["isFirstDeposit"] is False


@pytest.mark.parametrize("path", [["REJECTED"], ["REVERSED"]])
async def test_a_repeat_fire_for_a_rejected_or_reversed_conversion_is_still_a_repeat(
    client: httpx.AsyncClient, admin: GraphQL, path: list[str]
) -> None:
    click_id = await click_of(await new_shop())
    deposit = "type=deposit&amount=40&currency=eur&transaction_id=t1"
    await fire(client, click_id, "type=install")
    await fire(client, click_id, deposit)
    ids = await conversion_ids(click_id)
    await set_status(admin, list(ids.values()), *path)
    before = await Conversion.select().where(Conversion.click == click_id).order_by(Conversion.id)

    for query in ("type=install", deposit, f"{deposit}&test=true"):
        response = await client.get(f"/convert/{click_id}?{query}")
        assert response.status_code == 202, response.text
        assert response.content == b""

    after = await Conversion.select().where(Conversion.click == click_id).order_by(Conversion.id)
    assert after == before
    assert {row["status"] for row in after} == {path[-1].lower()}


# --- postback events, in the change's transaction -----------------------------------------


async def test_a_change_queues_its_postback_event_and_it_is_delivered(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver
) -> None:
    shop = await held_shop(admin)
    url = partner_receiver.url("/ok?event={event}&status={status}&c={conversion_id}")
    await create_rule(admin, shop, ["APPROVED", "REVERSED", "DEPOSIT"], url)
    await create_rule(
        admin, shop, ["REJECTED"], partner_receiver.url("/ok?rejected={conversion_id}")
    )
    click_id = await click_of(shop)
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()
    dispatcher = Dispatcher(POLICY)

    def sent() -> list[tuple[str, str, str]]:
        return [
            (request.query["event"][0], request.query["status"][0], request.query["c"][0])
            for request in partner_receiver.received
            if "event" in request.query
        ]

    assert await dispatcher.run_once() == 1
    # The deposit's own postback tells its status: held, so pending.
    assert sent() == [("deposit", "pending", id_)]

    await set_status(admin, [id_], "APPROVED")
    assert await dispatcher.run_once() == 1
    await set_status(admin, [id_], "APPROVED")  # already there: no change, no event
    await set_status(admin, [id_], "REVERSED")
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    # Another held deposit, rejected: only the rule naming REJECTED hears of it.
    await fire(client, click_id, "type=deposit&amount=5&currency=eur&transaction_id=t2")
    assert await dispatcher.run_once() == 1  # its DEPOSIT postback
    rejected = (await conversion_ids(click_id))["t2"]
    await set_status(admin, [rejected], "REJECTED", "fraud")
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    assert sent() == [
        ("deposit", "pending", id_),
        ("approved", "approved", id_),
        ("reversed", "reversed", id_),
        ("deposit", "pending", rejected),
    ]
    assert partner_receiver.received[-1].query == {"rejected": [rejected]}
    events = await PostbackDelivery.select(PostbackDelivery.event, PostbackDelivery.status)
    assert sorted((row["event"], row["status"]) for row in events) == [
        ("approved", "delivered"),
        ("deposit", "delivered"),
        ("deposit", "delivered"),
        ("rejected", "delivered"),
        ("reversed", "delivered"),
    ]


@asynccontextmanager
async def refusing_history(db: Engine) -> AsyncIterator[None]:
    """The store refuses every status history entry: a change fails at its last statement,
    after its status and its deliveries were written in the same transaction."""
    if is_postgres(db):
        await db.run_ddl(
            "CREATE FUNCTION refuse_status_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        await db.run_ddl(
            "CREATE TRIGGER refuse_status_change BEFORE INSERT ON conversion_status_change "
            "FOR EACH ROW EXECUTE FUNCTION refuse_status_change()"
        )
    else:
        await db.run_ddl(
            "CREATE TRIGGER refuse_status_change BEFORE INSERT ON conversion_status_change "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    try:
        yield
    finally:
        if is_postgres(db):
            await db.run_ddl("DROP TRIGGER refuse_status_change ON conversion_status_change")
            await db.run_ddl("DROP FUNCTION refuse_status_change()")
        else:
            await db.run_ddl("DROP TRIGGER refuse_status_change")


async def test_a_failed_change_leaves_no_status_no_history_and_no_delivery(
    client: httpx.AsyncClient, admin: GraphQL, partner_receiver: Receiver, db: Engine
) -> None:
    shop = await held_shop(admin)
    await create_rule(admin, shop, ["APPROVED"], partner_receiver.url("/ok"))
    click_id = await click_of(shop)
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()

    async with refusing_history(db):
        response = await admin.post(SET_STATUS, {"input": {"ids": [id_], "status": "APPROVED"}})
        assert response.status_code == 200
        assert response.json()["errors"]

    assert (await conversion(admin, id_))["status"] == "PENDING"
    assert await history_count() == 0
    assert await PostbackDelivery.count() == 0
    assert await Dispatcher(POLICY).run_once() == 0
    assert partner_receiver.received == []
    # Once the store takes it again, the same change goes through with its delivery.
    [result] = await set_status(admin, [id_], "APPROVED")
    assert result["__typename"] == "StatusChanged"
    assert await Dispatcher(POLICY).run_once() == 1
    assert [request.path for request in partner_receiver.received] == ["/ok"]


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_changes_of_one_conversion_write_one_transition(
    client: httpx.AsyncClient, admin: GraphQL
) -> None:
    shop = await held_shop(admin)
    await create_rule(admin, shop, ["APPROVED", "REJECTED", "REVERSED"], "https://p.example/")
    click_id = await click_of(shop)
    await fire(client, click_id, "type=deposit&amount=40&currency=eur&transaction_id=t1")
    [id_] = (await conversion_ids(click_id)).values()
    conversion_id = uuid.UUID(id_)

    # The same transition, asked ten times at once.
    outcomes = await asyncio.gather(
        *(
            statuses.set_conversion_status(
                [conversion_id], ConversionStatus.APPROVED, None, changed_by=f"k{n}"
            )
            for n in range(10)
        )
    )
    assert {type(outcome) for [outcome] in outcomes} == {statuses.StatusChanged}
    assert await history_count() == 1
    assert await PostbackDelivery.count() == 1

    # Two transitions that exclude each other: REJECTED then REVERSED is not allowed, nor
    # REVERSED then REJECTED, so exactly one of them happens.
    outcomes = await asyncio.gather(
        *(
            statuses.set_conversion_status([conversion_id], target, None, changed_by="k")
            for target in (ConversionStatus.REJECTED, ConversionStatus.REVERSED) * 3
        )
    )
    changed = [outcome for [outcome] in outcomes if isinstance(outcome, statuses.StatusChanged)]
    refused = [o for [o] in outcomes if isinstance(o, statuses.TransitionNotAllowed)]
    assert (len(changed), len(refused)) == (3, 3)
    final = {outcome.conversion.status for outcome in changed}
    assert len(final) == 1
    history = await ConversionStatusChange.select().order_by(ConversionStatusChange.changed_at)
    assert [(row["from_status"], row["to_status"]) for row in history] == [
        ("pending", "approved"),
        ("approved", final.pop().value),
    ]
    assert await PostbackDelivery.count() == 2
