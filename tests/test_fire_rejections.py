"""Rejected fires (SPEC part two, "Bulk ingestion and integration debugging": the bullet
"Rejected fires"), through the real pixel and GraphQL, on the engine DATABASE_URL names.

A rejection joins the worker's next batch and the fire's answer does not wait for it,
so the tests wait for rows to appear; "not logged" is shown by a later fire that is
logged alone (batches keep their order).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from api.app import create_app
from api.settings import Settings
from models.keys import Scope
from models.paging import Cursor
from models.partners.access import Access
from models.rejections.log import MAX_QUERY_LENGTH, RejectionCap, loggable_query
from models.rejections.pruning import Pruner
from models.rejections.queries import READS, FireRejectionFilter
from models.store import rejections_sql
from models.store.engine import is_postgres
from models.store.tables import Click, Conversion, FirePolicy, FireRejection
from models.tracking.offers import create_offer, rotate_fire_secret
from tests.graphql_client import graphql_as
from tests.support import logged_rejections as logged
from tests.support import new_click, new_link

CLIENT_IP = "203.0.113.7"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
PAGE = {"Referer": "https://operator.example/cashier?step=3"}


def codes(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(error["field"], error["code"]) for error in json.loads(row["errors"])]


async def offer_click(
    policy: FirePolicy = FirePolicy.OPEN, name: str = "Casino"
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, str | None]:
    """A click through a new partner's link to a new offer: (click, offer, partner, secret)."""
    offer = await create_offer(name, "https://operator.example/welcome", policy)
    secret = await rotate_fire_secret(offer.id) if policy is not FirePolicy.OPEN else None
    link = await new_link(offer.id, f"{name} partner")
    click_id = await new_click(tracking_link_id=link.id)
    return click_id, offer.id, link.partner_id, secret


def signature(secret: str, click_id: uuid.UUID, signed: str) -> str:
    message = f"{click_id}\n{signed}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def client_at(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def capped(db: Engine) -> Any:
    """An app that logs 3 rejections per offer per hour and 2 per address."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "FIRE_REJECTIONS_PER_OFFER_PER_HOUR": "3",
            "FIRE_REJECTIONS_PER_ADDRESS_PER_HOUR": "2",
        }
    )
    return create_app(settings)


# --- what is logged -------------------------------------------------------------------


async def test_a_422_is_logged_with_its_errors_click_offer_partner_and_request(
    client: httpx.AsyncClient,
) -> None:
    click_id, offer_id, partner_id, _ = await offer_click()
    response = await client.get(
        f"/convert/{click_id}?type=bogus&amount=NaN&player_id=p-1&cb=1",
        headers={**BROWSER, **PAGE},
    )
    assert response.status_code == 422
    [row] = await logged(1)
    assert row["status"] == 422
    assert codes(row) == [(error["field"], error["code"]) for error in response.json()["errors"]]
    assert ("type", "invalid_choice") in codes(row)
    assert row["click_id"] == click_id
    assert (row["offer"], row["partner"]) == (offer_id, partner_id)
    assert row["query"] == "type=bogus&amount=NaN&player_id=p-1&cb=1"
    assert row["ip"] == CLIENT_IP
    assert row["user_agent"] == BROWSER["User-Agent"]
    assert row["referrer"] == PAGE["Referer"]
    assert abs(row["at"] - datetime.now(UTC)) < timedelta(seconds=30)


async def test_a_404_is_logged_with_its_click_id_and_no_offer(client: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    response = await client.get(f"/convert/{unknown}?type=install")
    assert response.status_code == 404
    [row] = await logged(1)
    assert (row["status"], codes(row)) == (404, [("click_id", "not_found")])
    assert row["click_id"] == unknown
    assert (row["offer"], row["partner"]) == (None, None)


async def test_a_409_is_logged_with_the_clicks_offer(client: httpx.AsyncClient) -> None:
    click_id, offer_id, partner_id, _ = await offer_click()
    fire = f"/convert/{click_id}?type=deposit&currency=eur&transaction_id=t-1&amount="
    assert (await client.get(fire + "10")).status_code == 202
    assert (await client.get(fire + "11")).status_code == 409
    [row] = await logged(1)
    assert (row["status"], codes(row)) == (409, [("transaction_id", "conflict")])
    assert (row["click_id"], row["offer"], row["partner"]) == (click_id, offer_id, partner_id)


async def test_a_401_is_logged_with_the_clicks_offer(client: httpx.AsyncClient) -> None:
    click_id, offer_id, partner_id, _ = await offer_click(FirePolicy.SIGNED)
    # Invalid as well: the signature is judged first, as the answer says.
    response = await client.get(f"/convert/{click_id}?type=install&test=maybe")
    assert response.status_code == 401
    [row] = await logged(1)
    assert (row["status"], codes(row)) == (401, [("sig", "signature_required")])
    assert (row["click_id"], row["offer"], row["partner"]) == (click_id, offer_id, partner_id)


async def test_an_unreadable_click_id_is_logged_without_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/convert/not-a-uuid?type=install")
    assert response.status_code == 422
    [row] = await logged(1)
    assert row["click_id"] is None
    assert ("click_id", "invalid_uuid") in codes(row)


async def test_a_beacons_form_body_is_logged_after_its_query(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.post(
        f"/convert/{click_id}?cb=7",
        content=b"type=deposit&amount=-5&currency=eur",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    [row] = await logged(1)
    assert row["query"] == "cb=7&type=deposit&amount=-5&currency=eur"
    assert (row["offer"], row["partner"]) == (None, None)


async def test_a_test_fire_is_logged_like_any_other(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(f"/convert/{click_id}?type=deposit&amount=1e3&test=true")
    assert response.status_code == 422
    [row] = await logged(1)
    assert row["query"] == "type=deposit&amount=1e3&test=true"


async def test_accepted_fires_head_and_other_statuses_are_not_logged(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 202
    assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 202  # repeat
    assert (await client.post(f"/convert/{click_id}?type=registration")).status_code == 202
    # HEAD is a dry run: it stores nothing, its refusal included.
    assert (await client.head(f"/convert/{click_id}?type=bogus")).status_code == 422
    assert (await client.head(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
    too_long = f"/convert/{click_id}?type=install&pad={'x' * 5000}"
    assert (await client.get(too_long)).status_code == 414
    json_body = await client.post(
        f"/convert/{click_id}", json={"type": "deposit"}, headers={"Content-Type": "text/json"}
    )
    assert json_body.status_code == 415
    # A later fire that is logged comes alone: nothing before it was.
    assert (await client.get(f"/convert/{click_id}?type=nope&last=1")).status_code == 422
    [row] = await logged(1)
    assert row["query"] == "type=nope&last=1"


async def test_rejections_share_batches_with_conversions_and_clicks(
    client: httpx.AsyncClient,
) -> None:
    """Fires accepted and refused at once, and tracking-link visits, ride the same
    batches: every conversion and click is stored, every refusal logged."""
    click_ids = [await new_click() for _ in range(10)]
    offer = await create_offer("Mixed", "https://operator.example/welcome")
    link = await new_link(offer.id, "mixed partner")
    answers = await asyncio.gather(
        *(client.get(f"/convert/{click_id}?type=install") for click_id in click_ids),
        *(
            client.get(f"/convert/{click_id}?type=bogus&n={n}")
            for n, click_id in enumerate(click_ids)
        ),
        *(client.get(f"/track/{link.id}") for _ in range(10)),
    )
    assert [answer.status_code for answer in answers] == [202] * 10 + [422] * 10 + [302] * 10
    assert await Conversion.count() == 10
    assert await Click.count().where(Click.tracking_link == link.id) == 10
    assert sorted(row["query"] for row in await logged(10)) == sorted(
        f"type=bogus&n={n}" for n in range(10)
    )


# --- never a sig, at most 1 KiB -------------------------------------------------------


async def test_a_signed_fires_rejection_keeps_no_trace_of_its_signature(
    client: httpx.AsyncClient,
) -> None:
    click_id, _, _, secret = await offer_click(FirePolicy.SIGNED)
    assert secret is not None
    # Correctly signed, and refused for another reason: a signed deposit needs a
    # transaction_id under a signing policy.
    good = signature(secret, click_id, "amount=40.00&currency=eur&type=deposit")
    wrong = "ab" * 32
    fires = [
        (f"type=deposit&amount=40.00&currency=eur&sig={good}", 422),
        (f"type=install&sig={wrong}&cb=1", 401),
        (f"type=install&%73ig={wrong}", 401),
        (f"SIG={wrong.upper()}&type=install&sig={wrong}", 401),
        (f"type=install&sig={wrong}&sig={good}", 401),
    ]
    for query, status in fires:
        assert (await client.get(f"/convert/{click_id}?{query}")).status_code == status, query
    rows = await logged(len(fires))
    for row in rows:
        stored = repr(row).lower()
        assert good not in stored, row
        assert wrong not in stored, row
        assert "sig=" not in row["query"].lower()
    assert sorted(row["query"] for row in rows) == sorted(
        ["type=deposit&amount=40.00&currency=eur", "type=install&cb=1"] + ["type=install"] * 3
    )


async def test_the_query_is_cut_to_1_kib(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    query = "type=bogus&pad=" + "x" * 3000
    assert (await client.get(f"/convert/{click_id}?{query}")).status_code == 422
    [row] = await logged(1)
    assert row["query"] == query[:MAX_QUERY_LENGTH]


def test_the_cut_never_splits_an_escape_and_nothing_unprintable_is_kept() -> None:
    head = b"type=x&pad=" + b"y" * (MAX_QUERY_LENGTH - len(b"type=x&pad=") - 2)
    cut = loggable_query(head + b"%41%42")
    assert cut == head.decode()
    assert loggable_query(b"player_id=a b\x00\xff&sig=1") == "player_id=a%20b%00%FF"
    assert loggable_query(b"sig=1", b"") is None
    assert loggable_query(b"a=1&Sig=2&s%69g=3&si+g=4") == "a=1&si+g=4"


# --- cheap and bounded ----------------------------------------------------------------


async def test_the_cap_per_offer_per_hour(capped: Any) -> None:
    click_id, offer_id, _, _ = await offer_click(name="Flooded")
    other_click, other_offer, _, _ = await offer_click(name="Quiet")
    async with client_at(capped, CLIENT_IP) as client:
        for number in range(5):
            assert (await client.get(f"/convert/{click_id}?type=no&n={number}")).status_code == 422
        assert (await client.get(f"/convert/{other_click}?type=no")).status_code == 422
    rows = await logged(4)
    by_offer = [row["offer"] for row in rows]
    assert by_offer.count(offer_id) == 3
    assert by_offer.count(other_offer) == 1
    assert [row["query"] for row in rows if row["offer"] == offer_id] == [
        "type=no&n=0",
        "type=no&n=1",
        "type=no&n=2",
    ]


async def test_the_cap_per_address_for_fires_without_an_offer(capped: Any) -> None:
    async with client_at(capped, "198.51.100.1") as flooding:
        for _ in range(4):
            assert (await flooding.get(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
    async with client_at(capped, "198.51.100.2") as other:
        assert (await other.get(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
    rows = await logged(3)
    assert sorted(row["ip"] for row in rows) == ["198.51.100.1", "198.51.100.1", "198.51.100.2"]
    # All fires without an offer together count as one offer: a third address finds the
    # hour's 3 taken.
    async with client_at(capped, "198.51.100.3") as third:
        assert (await third.get(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
        assert (await third.get("/convert/x?type=nope&sentinel=1")).status_code == 422
    await asyncio.sleep(0.2)
    assert len(await logged(3)) == 3


def test_the_cap_counts_in_clock_hours() -> None:
    now = [7200.0]
    cap = RejectionCap(per_offer_per_hour=2, per_address_per_hour=1, clock=lambda: now[0])
    offer = uuid.uuid4()
    assert [cap.admits(offer, "192.0.2.1") for _ in range(3)] == [True, True, False]
    assert [cap.admits(None, "192.0.2.1") for _ in range(2)] == [True, False]
    assert cap.admits(None, "192.0.2.2") is True
    assert cap.admits(None, "192.0.2.3") is False  # the hour's 2 without an offer are taken
    now[0] += 3600
    assert cap.admits(offer, "192.0.2.1") is True
    assert cap.admits(None, "192.0.2.1") is True


# --- pruning --------------------------------------------------------------------------


async def _stored_rejection(at: datetime) -> uuid.UUID:
    row = FireRejection(at=at, status=404, errors="[]", click_id=uuid.uuid4())
    await row.save()
    return row.id


async def test_pruning_removes_rows_past_the_retention_and_keeps_the_rest(db: Engine) -> None:
    now = datetime.now(UTC)
    old = [await _stored_rejection(now - timedelta(days=7, minutes=n + 1)) for n in range(5)]
    kept = [
        await _stored_rejection(now - timedelta(days=6, hours=23)),
        await _stored_rejection(now),
    ]
    pruner = Pruner(timedelta(days=7), batch_size=2)
    assert await pruner.prune_once() == len(old)
    assert set(await FireRejection.select(FireRejection.id).output(as_list=True)) == set(kept)
    assert await pruner.prune_once() == 0


async def test_the_pruner_runs_by_itself_until_stopped(db: Engine) -> None:
    now = datetime.now(UTC)
    await _stored_rejection(now - timedelta(days=3))
    kept = await _stored_rejection(now)
    pruner = Pruner(timedelta(days=1), interval_seconds=0.02)
    pruner.start()
    try:
        for _ in range(200):
            if await FireRejection.count() == 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await pruner.stop()
    assert await FireRejection.select(FireRejection.id).output(as_list=True) == [kept]


# --- GraphQL --------------------------------------------------------------------------

PAGE_QUERY = """
query ($filter: FireRejectionFilter, $first: Int, $after: String) {
  fireRejections(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id at status errors { field code message } clickId offer { id } partner { id }
      query ip userAgent referrer
    } }
  }
}
"""


def _queries(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["query"] for edge in connection["edges"]]


async def test_graphql_lists_them_newest_first_with_every_field(
    client: httpx.AsyncClient,
) -> None:
    click_id, offer_id, partner_id, _ = await offer_click()
    await client.get(f"/convert/{click_id}?type=bogus&n=1", headers={**BROWSER, **PAGE})
    await logged(1)
    await client.get(f"/convert/{uuid.uuid4()}?type=install&n=2")
    await logged(2)
    graphql = await graphql_as(client, Scope.READ)
    data = await graphql.data(PAGE_QUERY)
    page = data["fireRejections"]
    assert page["totalCount"] == 2
    assert _queries(page) == ["type=install&n=2", "type=bogus&n=1"]
    node = page["edges"][1]["node"]
    assert node["status"] == 422
    assert node["errors"][0] == {
        "field": "type",
        "code": "invalid_choice",
        "message": node["errors"][0]["message"],
    }
    assert "type" in node["errors"][0]["message"]
    assert node["clickId"] == str(click_id)
    assert node["offer"] == {"id": str(offer_id)}
    assert node["partner"] == {"id": str(partner_id)}
    assert (node["ip"], node["userAgent"], node["referrer"]) == (
        CLIENT_IP,
        BROWSER["User-Agent"],
        PAGE["Referer"],
    )
    assert page["edges"][0]["node"]["offer"] is None


async def test_graphql_filters_and_pages(client: httpx.AsyncClient) -> None:
    first_click, first_offer, first_partner, _ = await offer_click(name="One")
    second_click, _, _, _ = await offer_click(name="Two")
    for number in range(3):
        await client.get(f"/convert/{first_click}?type=no&n={number}")
    await client.get(f"/convert/{second_click}?type=no&n=9")
    rows = await logged(4)
    graphql = await graphql_as(client, Scope.READ)

    async def queries(**filter: Any) -> list[str]:
        data = await graphql.data(PAGE_QUERY, {"filter": filter})
        return _queries(data["fireRejections"])

    newest_first = ["type=no&n=2", "type=no&n=1", "type=no&n=0"]
    assert await queries(clickId=str(first_click)) == newest_first
    assert await queries(offerId=str(first_offer)) == newest_first
    assert await queries(partnerId=str(first_partner)) == newest_first
    assert await queries(clickId=str(uuid.uuid4())) == []
    middle = rows[1]["at"]
    assert await queries(**{"from": middle.isoformat()}) == [
        "type=no&n=9",
        "type=no&n=2",
        "type=no&n=1",
    ]
    assert await queries(to=middle.isoformat()) == ["type=no&n=0"]

    seen: list[str] = []
    after = None
    while True:
        data = await graphql.data(PAGE_QUERY, {"first": 3, "after": after})
        page = data["fireRejections"]
        seen += _queries(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["type=no&n=9", *newest_first]


async def test_graphql_needs_a_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ fireRejections { totalCount } }"})
    assert response.status_code == 401


NOW = datetime.now(UTC)
CURSOR = Cursor(NOW, uuid.uuid4())  # any id: the plan is what matters
PARTNER_KEY = Access(uuid.uuid4())
PAGE_INDEXES = [
    (FireRejectionFilter(), "fire_rejection_at_id"),
    (FireRejectionFilter(click_id=CURSOR.id), "fire_rejection_click_id_at_id"),
    (FireRejectionFilter(offer_id=CURSOR.id), "fire_rejection_offer_at_id"),
    (FireRejectionFilter(partner_id=CURSOR.id), "fire_rejection_partner_at_id"),
    (FireRejectionFilter(at_from=NOW - timedelta(days=1)), "fire_rejection_at_id"),
    (FireRejectionFilter(at_to=NOW), "fire_rejection_at_id"),
]


async def _plan(engine: Engine, sql: str, *arguments: Any) -> str:
    async with engine.transaction() as transaction:
        # The test table is tiny, so the planner would rightly scan or sort it. With those
        # plans priced out, it shows whether an index serves filter and order alike.
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
    if not is_postgres(db):
        pytest.skip("EXPLAIN plans are checked on PostgreSQL, the production store")
    return db


@pytest.mark.parametrize(("rejection_filter", "index"), PAGE_INDEXES)
@pytest.mark.parametrize("after", [None, CURSOR])
async def test_pages_are_index_range_scans(
    postgres: Engine, rejection_filter: FireRejectionFilter, index: str, after: Cursor | None
) -> None:
    query = READS.page_query(rejection_filter.conditions(), 50, after)
    sql, arguments = query.querystrings[0].compile_string(engine_type="postgres")
    _assert_index_range_scan(await _plan(postgres, sql, *arguments), index)


async def test_a_partner_keys_page_is_an_index_range_scan(postgres: Engine) -> None:
    query = READS.page_query(PARTNER_KEY.conditions(FireRejection), 50, CURSOR)
    sql, arguments = query.querystrings[0].compile_string(engine_type="postgres")
    _assert_index_range_scan(await _plan(postgres, sql, *arguments), "fire_rejection_partner_at_id")


async def test_pruning_walks_the_oldest_rows_by_index(postgres: Engine) -> None:
    plan = await _plan(postgres, rejections_sql.POSTGRES_PRUNE, NOW, 500)
    assert "fire_rejection_at_id" in plan, plan
    assert "Seq Scan" not in plan, plan
