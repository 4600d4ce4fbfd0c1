"""Reading clicks and conversions: by id, filtered, paged with keyset cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from models.keys import Scope
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, graphql_as, ids_of, issue_key, seed_click, seed_conversion
from tests.support import new_link

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)

CONVERSIONS = """
query Conversions($filter: ConversionFilter, $first: Int, $after: String) {
  conversions(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
  }
}
"""

CLICKS = """
query Clicks($filter: ClickFilter, $first: Int, $after: String) {
  clicks(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture
async def graphql(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.READ)


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def _conversions(graphql: GraphQL, **variables: Any) -> dict[str, Any]:
    return (await graphql.data(CONVERSIONS, variables))["conversions"]


async def _clicks(graphql: GraphQL, **variables: Any) -> dict[str, Any]:
    return (await graphql.data(CLICKS, variables))["clicks"]


async def _all_pages(graphql: GraphQL, query: str, field: str, first: int) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = (await graphql.data(query, {"first": first, "after": after}))[field]
        seen += ids_of(page)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]


async def test_a_conversion_by_id_with_its_click(graphql: GraphQL) -> None:
    click_id = await seed_click(player_id="p-1")
    conversion_id = await seed_conversion(
        click_id, transaction_id="t-1", amount="1234.5", currency="usd", player_id="p-1"
    )
    data = await graphql.data(
        """query($id: UUID!) { conversion(id: $id) {
             id type playerId transactionId currency amount isFirstDeposit source
             occurredAt receivedAt ip userAgent referrer country click { id playerId stage }
        } }""",
        {"id": str(conversion_id)},
    )
    conversion = data["conversion"]
    assert conversion["amount"] == "1234.50"
    assert (conversion["type"], conversion["currency"], conversion["source"]) == (
        "DEPOSIT",
        "USD",
        "PIXEL",
    )
    assert conversion["isFirstDeposit"] is True
    assert conversion["click"] == {"id": str(click_id), "playerId": "p-1", "stage": "DEPOSIT"}
    assert datetime.fromisoformat(conversion["receivedAt"]).utcoffset() == timedelta(0)


async def test_unknown_ids_answer_null(graphql: GraphQL) -> None:
    data = await graphql.data(
        "query($id: UUID!) { click(id: $id) { id } conversion(id: $id) { id } }",
        {"id": str(uuid.uuid4())},
    )
    assert data == {"click": None, "conversion": None}


async def test_a_malformed_id_is_refused_by_the_uuid_scalar(graphql: GraphQL) -> None:
    errors = await graphql.errors("query($id: UUID!) { click(id: $id) { id } }", {"id": "nope"})
    assert errors


async def test_a_click_with_its_conversions_newest_first(graphql: GraphQL) -> None:
    click_id = await seed_click()
    install = await seed_conversion(click_id, "install", occurred_at=_ago(30))
    registration = await seed_conversion(click_id, "registration", occurred_at=_ago(20))
    deposit = await seed_conversion(click_id, "deposit", occurred_at=_ago(10))
    data = await graphql.data(
        """query($id: UUID!) { click(id: $id) {
             id stage conversions(first: 2) {
               totalCount edges { node { id type } } pageInfo { hasNextPage endCursor }
             }
        } }""",
        {"id": str(click_id)},
    )
    click = data["click"]
    assert click["stage"] == "DEPOSIT"
    connection = click["conversions"]
    assert connection["totalCount"] == 3
    assert ids_of(connection) == [str(deposit), str(registration)]
    assert connection["pageInfo"]["hasNextPage"] is True
    rest = await graphql.data(
        "query($id: UUID!, $after: String) { click(id: $id) {"
        " conversions(after: $after) { edges { node { id } } pageInfo { hasNextPage } } } }",
        {"id": str(click_id), "after": connection["pageInfo"]["endCursor"]},
    )
    assert ids_of(rest["click"]["conversions"]) == [str(install)]
    assert rest["click"]["conversions"]["pageInfo"]["hasNextPage"] is False


async def test_conversions_page_newest_first_with_cursors(graphql: GraphQL) -> None:
    click_id = await seed_click()
    ids = [
        await seed_conversion(click_id, transaction_id=f"t{n}", occurred_at=_ago(100 - n))
        for n in range(5)
    ]
    newest_first = [str(conversion_id) for conversion_id in reversed(ids)]
    first_page = await _conversions(graphql, first=2)
    assert first_page["totalCount"] == 5
    assert ids_of(first_page) == newest_first[:2]
    info = first_page["pageInfo"]
    assert info == {
        "hasNextPage": True,
        "endCursor": first_page["edges"][1]["cursor"],
        "startCursor": first_page["edges"][0]["cursor"],
        "hasPreviousPage": False,
    }
    assert await _all_pages(graphql, CONVERSIONS, "conversions", 2) == newest_first


async def test_paging_survives_inserts_between_pages(graphql: GraphQL) -> None:
    """Rows inserted mid-paging neither repeat nor hide the rows the client has yet to see."""
    click_id = await seed_click()
    seeded = [
        await seed_conversion(click_id, transaction_id=f"t{n}", occurred_at=_ago(100 - n * 10))
        for n in range(6)
    ]
    first_page = await _conversions(graphql, first=2)
    # A newer row would shift an offset page by one and repeat a row; an older row
    # lands after the cursor and must show up on a later page.
    await seed_conversion(click_id, transaction_id="newer", occurred_at=_ago(1))
    older = await seed_conversion(click_id, transaction_id="older", occurred_at=_ago(95))
    seen = ids_of(first_page)
    after = first_page["pageInfo"]["endCursor"]
    while after:
        page = await _conversions(graphql, first=2, after=after)
        seen += ids_of(page)
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    expected = [str(i) for i in reversed(seeded[4:])] + [
        str(seeded[3]),
        str(seeded[2]),
        str(seeded[1]),
        str(older),
        str(seeded[0]),
    ]
    assert seen == expected
    assert len(seen) == len(set(seen))


async def test_rows_with_the_same_time_are_ordered_by_id_without_loss(graphql: GraphQL) -> None:
    same_moment = _ago(30)
    click_id = await seed_click()
    ids = {
        str(await seed_conversion(click_id, transaction_id=f"t{n}", occurred_at=same_moment))
        for n in range(4)
    }
    seen = await _all_pages(graphql, CONVERSIONS, "conversions", 1)
    assert len(seen) == 4
    assert set(seen) == ids
    assert seen == sorted(seen, key=uuid.UUID, reverse=True)


async def test_click_paging_survives_inserts_between_pages(graphql: GraphQL) -> None:
    clicks = [await seed_click(minutes_ago=60 - n) for n in range(5)]
    first_page = await _clicks(graphql, first=2)
    assert ids_of(first_page) == [str(clicks[4]), str(clicks[3])]
    await seed_click(minutes_ago=0)
    rest = await _clicks(graphql, first=10, after=first_page["pageInfo"]["endCursor"])
    assert ids_of(rest) == [str(click_id) for click_id in reversed(clicks[:3])]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["totalCount"] == 6


async def test_first_defaults_to_50(graphql: GraphQL) -> None:
    for minutes in range(51):
        await seed_click(minutes_ago=minutes)
    page = await _clicks(graphql)
    assert len(page["edges"]) == 50
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 51


async def test_first_zero_answers_the_count_alone(graphql: GraphQL) -> None:
    await seed_click()
    page = await _clicks(graphql, first=0)
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 1


@pytest.mark.parametrize("first", [-1, 501])
async def test_first_outside_the_cap_is_refused(graphql: GraphQL, first: int) -> None:
    for query in (CONVERSIONS, CLICKS):
        errors = await graphql.errors(query, {"first": first})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "500" in errors[0]["message"]


async def test_the_page_cap_is_configurable(db: object) -> None:
    settings = Settings.from_env({"GRAPHQL_MAX_PAGE_SIZE": "3"})
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        graphql = GraphQL(client, await issue_key(Scope.READ))
        await seed_click()
        errors = await graphql.errors(CLICKS, {"first": 4})
        assert "between 0 and 3" in errors[0]["message"]
        assert (await _clicks(graphql, first=3))["totalCount"] == 1
        assert (await _clicks(graphql))["totalCount"] == 1, "the default shrinks to the cap"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "Y2xpY2t8bm90LWEtZGF0ZXx4",  # base64 of "click|not-a-date|x"
        "!!!",
    ],
)
async def test_a_bad_cursor_is_refused(graphql: GraphQL, cursor: str) -> None:
    errors = await graphql.errors(CONVERSIONS, {"after": cursor})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_click_cursor_is_no_conversion_cursor(graphql: GraphQL) -> None:
    await seed_click()
    click_cursor = (await _clicks(graphql, first=1))["edges"][0]["cursor"]
    errors = await graphql.errors(CONVERSIONS, {"after": click_cursor})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_every_conversion_filter(graphql: GraphQL) -> None:
    alice_click = await seed_click(player_id="alice")
    bob_click = await seed_click(player_id="bob")
    alice_install = await seed_conversion(
        alice_click, "install", player_id="alice", occurred_at=_ago(50)
    )
    alice_deposit = await seed_conversion(
        alice_click,
        "deposit",
        player_id="alice",
        transaction_id="tx-a",
        amount="10",
        currency="eur",
        occurred_at=_ago(40),
    )
    bob_deposit = await seed_conversion(
        bob_click,
        "deposit",
        player_id="bob",
        transaction_id="tx-b",
        amount="20",
        currency="usd",
        occurred_at=_ago(30),
    )
    bob_unknown_amount = await seed_conversion(
        bob_click, "deposit", transaction_id="tx-a", occurred_at=_ago(20)
    )

    async def matching(**conversion_filter: Any) -> list[str]:
        page = await _conversions(graphql, filter=conversion_filter)
        assert page["totalCount"] == len(page["edges"])
        return ids_of(page)

    def as_ids(*ids: uuid.UUID) -> list[str]:
        return [str(i) for i in ids]

    assert await matching(clickId=str(alice_click)) == as_ids(alice_deposit, alice_install)
    assert await matching(playerId="bob") == as_ids(bob_deposit)
    assert await matching(transactionId="tx-a") == as_ids(bob_unknown_amount, alice_deposit)
    assert await matching(type="INSTALL") == as_ids(alice_install)
    assert await matching(type="DEPOSIT") == as_ids(bob_unknown_amount, bob_deposit, alice_deposit)
    assert await matching(currency="EUR") == as_ids(alice_deposit)
    assert await matching(currency="GBP") == []
    assert await matching(occurredFrom=_ago(45).isoformat()) == as_ids(
        bob_unknown_amount, bob_deposit, alice_deposit
    )
    assert await matching(occurredTo=_ago(35).isoformat()) == as_ids(alice_deposit, alice_install)
    # Bounds: from is inclusive, to exclusive; any offset means the same instant.
    window = await matching(
        occurredFrom=_ago(45).astimezone(timezone(timedelta(hours=5))).isoformat(),
        occurredTo=_ago(25).isoformat(),
    )
    assert window == as_ids(bob_deposit, alice_deposit)
    assert await matching(clickId=str(bob_click), transactionId="tx-a", type="DEPOSIT") == as_ids(
        bob_unknown_amount
    )
    assert await matching(playerId="nobody") == []


async def test_occurred_bounds_are_inclusive_from_and_exclusive_to(graphql: GraphQL) -> None:
    moment = _ago(30).replace(microsecond=0)
    click_id = await seed_click()
    conversion_id = await seed_conversion(click_id, "install", occurred_at=moment)
    at_moment = moment.isoformat()
    page = await _conversions(graphql, filter={"occurredFrom": at_moment})
    assert ids_of(page) == [str(conversion_id)]
    assert ids_of(await _conversions(graphql, filter={"occurredTo": at_moment})) == []


async def test_every_click_filter(graphql: GraphQL) -> None:
    old = await seed_click(minutes_ago=50, player_id="alice")
    middle = await seed_click(minutes_ago=30, player_id="bob")
    new = await seed_click(minutes_ago=10)
    await seed_conversion(middle, "registration")
    await seed_conversion(new, "install")

    async def matching(**click_filter: Any) -> list[str]:
        page = await _clicks(graphql, filter=click_filter)
        assert page["totalCount"] == len(page["edges"])
        return ids_of(page)

    assert await matching(playerId="alice") == [str(old)]
    assert await matching(stage="NONE") == [str(old)]
    assert await matching(stage="REGISTRATION") == [str(middle)]
    assert await matching(stage="INSTALL") == [str(new)]
    assert await matching(stage="DEPOSIT") == []
    now = datetime.now(UTC)
    assert await matching(createdFrom=(now - timedelta(minutes=40)).isoformat()) == [
        str(new),
        str(middle),
    ]
    assert await matching(createdTo=(now - timedelta(minutes=20)).isoformat()) == [
        str(middle),
        str(old),
    ]
    assert await matching(
        createdFrom=(now - timedelta(minutes=40)).isoformat(),
        createdTo=(now - timedelta(minutes=20)).isoformat(),
        playerId="bob",
    ) == [str(middle)]


async def test_clicks_with_their_conversions_on_one_page(graphql: GraphQL) -> None:
    first = await seed_click(minutes_ago=20)
    second = await seed_click(minutes_ago=10)
    first_install = await seed_conversion(first, "install", occurred_at=_ago(60))
    first_deposits = [
        await seed_conversion(first, transaction_id=f"d{n}", occurred_at=_ago(50 - n))
        for n in range(3)
    ]
    data = await graphql.data(
        """{ clicks { edges { node { id conversions(first: 2) {
             totalCount edges { node { id click { id } } } pageInfo { hasNextPage }
        } } } } }"""
    )
    [second_node, first_node] = [edge["node"] for edge in data["clicks"]["edges"]]
    assert second_node["id"] == str(second)
    assert second_node["conversions"] == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False},
    }
    assert first_node["conversions"]["totalCount"] == 4
    assert ids_of(first_node["conversions"]) == [str(first_deposits[2]), str(first_deposits[1])]
    assert first_node["conversions"]["pageInfo"]["hasNextPage"] is True
    assert {edge["node"]["click"]["id"] for edge in first_node["conversions"]["edges"]} == {
        str(first)
    }
    assert str(first_install) not in ids_of(first_node["conversions"])


async def test_a_tracked_visit_and_its_pixel_fire_read_back_enriched(graphql: GraphQL) -> None:
    """What the tracking link and a browser fire record is what a dashboard reads."""
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id, "partner-42")
    browser = {"User-Agent": IPHONE_SAFARI, "Referer": "https://partner.example/review"}
    visit = await graphql.client.get(
        f"/track/{link.id}", params={"type": "ppc", "s1": "campaign-7"}, headers=browser
    )
    assert visit.status_code == 302
    [click] = (await _clicks(graphql))["edges"]
    click_id = click["node"]["id"]
    fired = await graphql.client.get(
        f"/convert/{click_id}", params={"type": "install"}, headers=browser
    )
    assert fired.status_code == 202
    data = await graphql.data(
        """query($id: UUID!) { click(id: $id) {
             trackingLinkId type subIds { s1 s2 }
             userAgent referrer browserFamily osFamily deviceFamily
             conversions { edges { node { source userAgent browserFamily osFamily } } }
        } }""",
        {"id": click_id},
    )
    read = data["click"]
    assert (read["trackingLinkId"], read["type"], *read["subIds"].values()) == (
        str(link.id),
        "PPC",
        "campaign-7",
        None,
    )
    assert read["userAgent"] == IPHONE_SAFARI
    assert read["referrer"] == "https://partner.example/review"
    assert read["osFamily"] == "iOS"
    assert read["browserFamily"]
    [conversion] = [edge["node"] for edge in read["conversions"]["edges"]]
    assert conversion["source"] == "PIXEL"
    assert (conversion["browserFamily"], conversion["osFamily"]) == (
        read["browserFamily"],
        "iOS",
    )
