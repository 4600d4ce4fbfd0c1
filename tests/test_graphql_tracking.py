"""Offers and tracking links over GraphQL: create, list, page, and who may do what."""

from __future__ import annotations

import uuid

import httpx
import pytest
from piccolo.engine.base import Engine

from api.app import create_app
from api.settings import Settings
from models.keys import Scope
from models.partners.partners import create_partner
from models.store.tables import Click, Offer, TrackingLink
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, graphql_as, ids_of
from tests.support import new_click, new_link
from tests.test_graphql_performance import counted_statements

CREATE_OFFER = """
mutation ($input: CreateOfferInput!) {
  createOffer(input: $input) { id name landingUrl createdAt }
}
"""

CREATE_TRACKING_LINK = """
mutation ($input: CreateTrackingLinkInput!) {
  createTrackingLink(input: $input) {
    id partner { id name } creative createdAt offer { id name landingUrl }
  }
}
"""

OFFERS = """
query ($first: Int, $after: String) {
  offers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name } }
  }
}
"""

TRACKING_LINKS = """
query ($offerId: UUID, $first: Int, $after: String) {
  trackingLinks(offerId: $offerId, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id partner { name } offer { id name } } }
  }
}
"""


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.ADMIN)


async def test_an_admin_creates_an_offer_and_a_tracking_link_that_works(
    admin: GraphQL, client: httpx.AsyncClient
) -> None:
    offer = (
        await admin.data(
            CREATE_OFFER,
            {"input": {"name": "Welcome bonus", "landingUrl": "https://op.example/w?c={click_id}"}},
        )
    )["createOffer"]
    assert offer["name"] == "Welcome bonus"
    partner = await create_partner("partner-42")
    link = (
        await admin.data(
            CREATE_TRACKING_LINK,
            {
                "input": {
                    "offerId": offer["id"],
                    "partnerId": str(partner.id),
                    "creative": "banner-300x250",
                }
            },
        )
    )["createTrackingLink"]
    assert link["partner"] == {"id": str(partner.id), "name": "partner-42"}
    assert link["creative"] == "banner-300x250"
    assert link["offer"] == {
        "id": offer["id"],
        "name": "Welcome bonus",
        "landingUrl": "https://op.example/w?c={click_id}",
    }

    visit = await client.get(f"/track/{link['id']}")
    assert visit.status_code == 302
    assert visit.headers["location"].startswith("https://op.example/w?c=")
    assert await TrackingLink.count() == 1


async def test_a_bad_offer_names_every_field_and_stores_nothing(admin: GraphQL) -> None:
    [error] = await admin.errors(
        CREATE_OFFER, {"input": {"name": " ", "landingUrl": "javascript:alert(1)"}}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {item["field"]: item["code"] for item in error["extensions"]["errors"]} == {
        "name": "required",
        "landingUrl": "invalid_url",
    }
    assert await Offer.count() == 0


async def test_a_non_ascii_landing_url_is_stored_in_ascii_and_its_visits_redirect(
    admin: GraphQL, client: httpx.AsyncClient
) -> None:
    offer = (
        await admin.data(
            CREATE_OFFER,
            {"input": {"name": "Бонус", "landingUrl": "https://казино.example/бонус?ref=ё"}},
        )
    )["createOffer"]
    assert offer["landingUrl"] == (
        "https://xn--80aodfsg.example/%D0%B1%D0%BE%D0%BD%D1%83%D1%81?ref=%D1%91"
    )
    link = (
        await admin.data(
            CREATE_TRACKING_LINK,
            {"input": {"offerId": offer["id"], "partnerId": str((await create_partner("p")).id)}},
        )
    )["createTrackingLink"]
    visit = await client.get(f"/track/{link['id']}")
    assert visit.status_code == 302
    [click_id] = await Click.select(Click.id).output(as_list=True)
    assert visit.headers["location"] == f"{offer['landingUrl']}&click_id={click_id}"
    updated = await admin.data(
        "mutation ($id: UUID!) { updateOffer(id: $id, input: {landingUrl: "
        '"https://казино.example/новый"}) { landingUrl } }',
        {"id": offer["id"]},
    )
    assert updated["updateOffer"]["landingUrl"] == (
        "https://xn--80aodfsg.example/%D0%BD%D0%BE%D0%B2%D1%8B%D0%B9"
    )


async def test_a_landing_url_that_cannot_be_ascii_is_a_field_error(admin: GraphQL) -> None:
    [error] = await admin.errors(
        CREATE_OFFER, {"input": {"name": "Bonus", "landingUrl": "https://💰.example/bonus"}}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    [item] = error["extensions"]["errors"]
    assert (item["field"], item["code"]) == ("landingUrl", "invalid_url")
    assert "internationalised domain name" in item["message"]
    assert await Offer.count() == 0


async def test_a_tracking_link_to_an_unknown_offer_or_partner_is_refused(admin: GraphQL) -> None:
    [error] = await admin.errors(
        CREATE_TRACKING_LINK,
        {"input": {"offerId": str(uuid.uuid4()), "partnerId": str(uuid.uuid4())}},
    )
    assert {item["field"]: item["code"] for item in error["extensions"]["errors"]} == {
        "offerId": "not_found",
        "partnerId": "not_found",
    }
    assert await TrackingLink.count() == 0


@pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
async def test_only_an_admin_key_creates_offers_and_links(
    client: httpx.AsyncClient, scope: Scope
) -> None:
    graphql = await graphql_as(client, scope)
    offer = await create_offer("Welcome bonus", "https://op.example/")
    partner = await create_partner("p")
    link_input = {"offerId": str(offer.id), "partnerId": str(partner.id)}
    for mutation, variables in (
        (CREATE_OFFER, {"input": {"name": "Evil", "landingUrl": "https://evil.example/"}}),
        (CREATE_TRACKING_LINK, {"input": link_input}),
    ):
        [error] = await graphql.errors(mutation, variables)
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert await Offer.count() == 1
    assert await TrackingLink.count() == 0


async def test_offers_page_newest_first(client: httpx.AsyncClient) -> None:
    reader = await graphql_as(client, Scope.READ)
    created = [await create_offer(f"Offer {n}", "https://op.example/") for n in range(3)]
    first = (await reader.data(OFFERS, {"first": 2}))["offers"]
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await reader.data(OFFERS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "offers"
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert ids_of(first) + ids_of(rest) == [str(offer.id) for offer in reversed(created)]


async def test_tracking_links_of_one_offer_with_their_offer(client: httpx.AsyncClient) -> None:
    reader = await graphql_as(client, Scope.READ)
    casino = await create_offer("Casino", "https://casino.example/")
    poker = await create_offer("Poker", "https://poker.example/")
    casino_links = [await new_link(casino.id, f"partner-{n}") for n in range(2)]
    await new_link(poker.id, "partner-9")

    everything = (await reader.data(TRACKING_LINKS, {}))["trackingLinks"]
    assert everything["totalCount"] == 3
    of_casino = (await reader.data(TRACKING_LINKS, {"offerId": str(casino.id)}))["trackingLinks"]
    assert of_casino["totalCount"] == 2
    assert ids_of(of_casino) == [str(link.id) for link in reversed(casino_links)]
    assert {edge["node"]["offer"]["name"] for edge in of_casino["edges"]} == {"Casino"}


async def test_one_offer_and_one_tracking_link_by_id(client: httpx.AsyncClient) -> None:
    reader = await graphql_as(client, Scope.READ)
    offer = await create_offer("Casino", "https://casino.example/")
    link = await new_link(offer.id, "partner-1")
    data = await reader.data(
        """query ($offer: UUID!, $link: UUID!, $missing: UUID!) {
          offer(id: $offer) { name }
          trackingLink(id: $link) { partner { name } offer { name } }
          nothing: trackingLink(id: $missing) { id }
        }""",
        {"offer": str(offer.id), "link": str(link.id), "missing": str(uuid.uuid4())},
    )
    assert data == {
        "offer": {"name": "Casino"},
        "trackingLink": {"partner": {"name": "partner-1"}, "offer": {"name": "Casino"}},
        "nothing": None,
    }


CLICKS = """
query ($filter: ClickFilter) {
  clicks(filter: $filter) {
    totalCount
    edges {
      node {
        id type subIds { s1 s2 } country trackingLink { partner { name } offer { name } }
      }
    }
  }
}
"""


async def _visit(client: httpx.AsyncClient, link_id: uuid.UUID, **params: str) -> str:
    response = await client.get(f"/track/{link_id}", params=params)
    assert response.status_code == 302
    return response.headers["location"].rpartition("click_id=")[2]


async def test_clicks_filter_by_tracking_link_sub_ids_and_country(
    client: httpx.AsyncClient,
) -> None:
    reader = await graphql_as(client, Scope.READ)
    offer = await create_offer("Casino", "https://casino.example/")
    ours = await new_link(offer.id, "partner-1")
    theirs = await new_link(offer.id, "partner-2")
    summer = await _visit(client, ours.id, type="ppc", s1="summer", s2="a")
    winter = await _visit(client, ours.id, s1="winter", s2="a")
    await _visit(client, theirs.id, s1="summer", s2="a")

    async def matching(**filter_fields: str) -> list[str]:
        data = await reader.data(CLICKS, {"filter": filter_fields})
        assert data["clicks"]["totalCount"] == len(data["clicks"]["edges"])
        return ids_of(data["clicks"])

    assert await matching(trackingLinkId=str(ours.id)) == [winter, summer]
    assert await matching(trackingLinkId=str(ours.id), s1="summer") == [summer]
    assert await matching(s1="summer", s2="a") == await matching(s1="summer")
    assert len(await matching(s2="a")) == 3
    assert await matching(s1="autumn") == []
    # The test client's documentation address has no country.
    assert await matching(country="gb") == []

    [node] = [
        edge["node"]
        for edge in (await reader.data(CLICKS, {"filter": {"trackingLinkId": str(ours.id)}}))[
            "clicks"
        ]["edges"]
        if edge["node"]["id"] == summer
    ]
    assert node["type"] == "PPC"
    assert node["trackingLink"] == {"partner": {"name": "partner-1"}, "offer": {"name": "Casino"}}


async def test_clicks_filter_by_country_in_either_case(db) -> None:
    offer = await create_offer("Casino", "https://casino.example/")
    link = await new_link(offer.id, "partner-1")
    app = create_app(Settings.from_env({}))
    transport = httpx.ASGITransport(app=app, client=("81.2.69.160", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as british:
        click_id = await _visit(british, link.id)
        reader = await graphql_as(british, Scope.READ)
        for country in ("GB", "gb"):
            data = await reader.data(CLICKS, {"filter": {"country": country}})
            assert ids_of(data["clicks"]) == [click_id]
        assert (await reader.data(CLICKS, {"filter": {"country": "DE"}}))["clicks"]["edges"] == []


async def test_a_click_without_a_tracking_link_has_none(client: httpx.AsyncClient) -> None:
    reader = await graphql_as(client, Scope.READ)
    click_id = await new_click()
    data = await reader.data(
        "query ($id: UUID!) { click(id: $id) { trackingLink { id } } }", {"id": str(click_id)}
    )
    assert data == {"click": {"trackingLink": None}}


async def test_a_page_of_clicks_loads_links_and_offers_in_one_statement_each(
    client: httpx.AsyncClient, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = await graphql_as(client, Scope.READ)
    for n in range(4):
        offer = await create_offer(f"Offer {n}", "https://casino.example/")
        await _visit(client, (await new_link(offer.id, f"partner-{n}")).id)
    with counted_statements(db, monkeypatch) as statements:
        data = await reader.data(CLICKS, {})
    assert data["clicks"]["totalCount"] == 4
    names = {edge["node"]["trackingLink"]["offer"]["name"] for edge in data["clicks"]["edges"]}
    assert names == {f"Offer {n}" for n in range(4)}
    # The key, the page, its count, then one statement each for links, offers, partners.
    assert len(statements) == 6, statements
