"""A partner's key sees only its own partner's data, through every query, mutation and
subscription.

Two partners, each with an offer, a link, a click through it and a deposit on it,
and a click that belongs to nobody (createClick without a link). Partner "ours"
asks about everything; whatever is not its own must answer exactly as an id that
names nothing does: null, an empty page, ClickNotFound, `not_found`. Never
FORBIDDEN, which would say that the id exists.

`COVERAGE` maps every root field of the printed schema to the test that shows its
partner scope, and `test_every_query_and_mutation_has_a_partner_scope_test` fails
when a field is added without one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, build_schema
from litestar import Litestar

from models.clicks.service import NewClick, create_click
from models.keys import Scope
from models.partners.access import EVERYTHING
from models.partners.partners import create_partner
from models.postbacks.rules import RuleSaved, create_rule
from models.store.tables import (
    ApiKey,
    Click,
    Conversion,
    Offer,
    Partner,
    PostbackDelivery,
    PostbackEvent,
    PostbackRule,
    TrackingLink,
)
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from schema.root import schema
from tests.graphql_client import GraphQL, graphql_as, ids_of, seed_conversion
from tests.live_client import key_payload, live_socket, served_here, subscribed_here
from tests.support import logged_rejections, new_click


@dataclass(frozen=True)
class Side:
    """One partner's data: what its key may see, or what the other's may not."""

    partner_id: str
    offer_id: str
    link_id: str
    click_id: str
    conversion_id: str
    # A postback rule for every event, and so a delivery of the side's deposit.
    rule_id: str


@dataclass(frozen=True)
class World:
    ours: Side
    theirs: Side
    # A click without a tracking link, with a conversion: no partner's.
    stray_click_id: str
    stray_conversion_id: str

    def not_ours(self, kind: str) -> list[str]:
        """Ids of `kind` that partner "ours" must not see: the other partner's, the
        stray one's, and one that names nothing at all."""
        theirs = getattr(self.theirs, kind)
        stray = {
            "click_id": [self.stray_click_id],
            "conversion_id": [self.stray_conversion_id],
        }.get(kind, [])
        return [theirs, *stray, str(uuid.uuid4())]


async def _side(name: str) -> Side:
    partner = await create_partner(name)
    offer = await create_offer(f"{name} offer", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    saved = await create_rule(
        EVERYTHING,
        partner_id=partner.id,
        offer_id=None,
        events=list(PostbackEvent),
        url_template=f"https://{name}.example/pb?c={{click_id}}",
        allow_private_networks=False,
    )
    assert isinstance(saved, RuleSaved)
    click_id = await create_click(
        NewClick(tracking_link_id=link.id, created_at=datetime.now(UTC) - timedelta(hours=1))
    )
    conversion_id = await seed_conversion(
        click_id, "deposit", amount="40.00", currency="eur", transaction_id=f"{name}-1"
    )
    return Side(
        str(partner.id),
        str(offer.id),
        str(link.id),
        str(click_id),
        str(conversion_id),
        str(saved.rule.id),
    )


@pytest.fixture
async def world(db: object) -> World:
    ours, theirs = await _side("ours"), await _side("theirs")
    stray_click = await new_click()
    stray_conversion = await seed_conversion(stray_click, "install")
    return World(ours, theirs, str(stray_click), str(stray_conversion))


@pytest.fixture
async def partner(client: httpx.AsyncClient, world: World) -> GraphQL:
    """Partner "ours"'s key: write, the most a partner's key may be."""
    return await graphql_as(client, Scope.WRITE, uuid.UUID(world.ours.partner_id))


async def _by_id(partner: GraphQL, field: str, selection: str, id_: str) -> Any:
    data = await partner.data(
        f"query ($id: UUID!) {{ {field}(id: $id) {{ {selection} }} }}", {"id": id_}
    )
    return data[field]


async def _page_ids(partner: GraphQL, query: str, variables: dict[str, Any] | None = None) -> Any:
    data = await partner.data(query, variables)
    [connection] = data.values()
    assert connection["totalCount"] == len(connection["edges"])
    return ids_of(connection)


# --- queries --------------------------------------------------------------------------


async def test_click_by_id(partner: GraphQL, world: World) -> None:
    own = await _by_id(
        partner,
        "click",
        "id conversions { totalCount edges { node { id } } }"
        " trackingLink { id partner { id } offer { id } }",
        world.ours.click_id,
    )
    assert own == {
        "id": world.ours.click_id,
        "conversions": {"totalCount": 1, "edges": [{"node": {"id": world.ours.conversion_id}}]},
        "trackingLink": {
            "id": world.ours.link_id,
            "partner": {"id": world.ours.partner_id},
            "offer": {"id": world.ours.offer_id},
        },
    }
    for other in world.not_ours("click_id"):
        assert await _by_id(partner, "click", "id", other) is None


async def test_clicks_page(partner: GraphQL, world: World) -> None:
    query = (
        "query ($filter: ClickFilter) {"
        " clicks(filter: $filter) { totalCount edges { node { id } } } }"
    )
    assert await _page_ids(partner, query) == [world.ours.click_id]
    theirs = {"filter": {"trackingLinkId": world.theirs.link_id}}
    assert await _page_ids(partner, query, theirs) == []


async def test_conversion_by_id(partner: GraphQL, world: World) -> None:
    own = await _by_id(partner, "conversion", "id click { id }", world.ours.conversion_id)
    assert own == {"id": world.ours.conversion_id, "click": {"id": world.ours.click_id}}
    for other in world.not_ours("conversion_id"):
        assert await _by_id(partner, "conversion", "id", other) is None


async def test_conversions_page(partner: GraphQL, world: World) -> None:
    query = (
        "query ($filter: ConversionFilter) {"
        " conversions(filter: $filter) { totalCount edges { node { id } } } }"
    )
    assert await _page_ids(partner, query) == [world.ours.conversion_id]
    for other in world.not_ours("click_id"):
        assert await _page_ids(partner, query, {"filter": {"clickId": other}}) == []
    assert await _page_ids(partner, query, {"filter": {"transactionId": "theirs-1"}}) == []


async def test_offer_by_id(partner: GraphQL, world: World) -> None:
    """A partner sees the offers its links promote, which its links need; no other."""
    assert await _by_id(partner, "offer", "id", world.ours.offer_id) == {"id": world.ours.offer_id}
    for other in world.not_ours("offer_id"):
        assert await _by_id(partner, "offer", "id", other) is None


async def test_offers_page(partner: GraphQL, world: World) -> None:
    query = "{ offers { totalCount edges { node { id } } } }"
    assert await _page_ids(partner, query) == [world.ours.offer_id]


async def test_tracking_link_by_id(partner: GraphQL, world: World) -> None:
    own = await _by_id(partner, "trackingLink", "id partner { name }", world.ours.link_id)
    assert own == {"id": world.ours.link_id, "partner": {"name": "ours"}}
    for other in world.not_ours("link_id"):
        assert await _by_id(partner, "trackingLink", "id", other) is None


async def test_tracking_links_page(partner: GraphQL, world: World) -> None:
    query = (
        "query ($offerId: UUID) {"
        " trackingLinks(offerId: $offerId) { totalCount edges { node { id } } } }"
    )
    assert await _page_ids(partner, query) == [world.ours.link_id]
    assert await _page_ids(partner, query, {"offerId": world.theirs.offer_id}) == []


async def test_partner_by_id(partner: GraphQL, world: World) -> None:
    own = await _by_id(
        partner,
        "partner",
        "id trackingLinks { totalCount edges { node { id } } } postbackRules { id }",
        world.ours.partner_id,
    )
    assert own == {
        "id": world.ours.partner_id,
        "trackingLinks": {"totalCount": 1, "edges": [{"node": {"id": world.ours.link_id}}]},
        "postbackRules": [{"id": world.ours.rule_id}],
    }
    for other in world.not_ours("partner_id"):
        assert await _by_id(partner, "partner", "id", other) is None


async def test_partners_page(partner: GraphQL, world: World) -> None:
    query = "{ partners { totalCount edges { node { id } } } }"
    assert await _page_ids(partner, query) == [world.ours.partner_id]


async def test_postback_deliveries_page(partner: GraphQL, world: World) -> None:
    query = (
        "query ($filter: PostbackDeliveryFilter) { postbackDeliveries(filter: $filter) {"
        " totalCount edges { node { id rule { id } conversion { id } } } } }"
    )
    data = await partner.data(query)
    [edge] = data["postbackDeliveries"]["edges"]
    assert edge["node"]["rule"] == {"id": world.ours.rule_id}
    assert edge["node"]["conversion"] == {"id": world.ours.conversion_id}
    for filter in (
        *({"ruleId": other} for other in world.not_ours("rule_id")),
        *({"partnerId": other} for other in world.not_ours("partner_id")),
        *({"conversionId": other} for other in world.not_ours("conversion_id")),
    ):
        assert await _page_ids(partner, query, {"filter": filter}) == []
    # The other side's delivery exists: only the key's view hides it.
    assert await PostbackDelivery.count() == 2


async def test_fire_rejections_page(
    client: httpx.AsyncClient, partner: GraphQL, world: World
) -> None:
    """A partner sees the rejected fires on its own clicks: not another's, not a stray
    click's, not a fire on no click at all."""
    for click_id in (world.ours.click_id, world.theirs.click_id, world.stray_click_id):
        assert (await client.get(f"/convert/{click_id}?type=bogus")).status_code == 422
    assert (await client.get(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
    await logged_rejections(4)
    query = (
        "query ($filter: FireRejectionFilter) { fireRejections(filter: $filter) {"
        " totalCount edges { node { id clickId offer { id } partner { id } } } } }"
    )
    data = await partner.data(query)
    [edge] = data["fireRejections"]["edges"]
    assert edge["node"]["clickId"] == world.ours.click_id
    assert edge["node"]["offer"] == {"id": world.ours.offer_id}
    assert edge["node"]["partner"] == {"id": world.ours.partner_id}
    for filter in (
        *({"clickId": other} for other in world.not_ours("click_id")),
        *({"offerId": other} for other in world.not_ours("offer_id")),
        *({"partnerId": other} for other in world.not_ours("partner_id")),
    ):
        assert await _page_ids(partner, query, {"filter": filter}) == []


async def test_report(client: httpx.AsyncClient, partner: GraphQL, world: World) -> None:
    """A partner's report counts its own clicks and their conversions: not another's,
    not a stray click's; asking for another's offer, partner or link counts nothing."""
    query = (
        "query ($input: ReportInput!) { report(input: $input) {"
        " rows { offer { id } partner { id } trackingLink { id }"
        " metrics { clicks installs deposits depositTotals { currency amount } } }"
        " totals { clicks installs deposits } } }"
    )
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
    grouped = {**window, "groupBy": ["OFFER", "PARTNER", "TRACKING_LINK"]}
    data = await partner.data(query, {"input": grouped})
    assert data["report"]["rows"] == [
        {
            "offer": {"id": world.ours.offer_id},
            "partner": {"id": world.ours.partner_id},
            "trackingLink": {"id": world.ours.link_id},
            "metrics": {
                "clicks": 1,
                "installs": 0,
                "deposits": 1,
                "depositTotals": [{"currency": "EUR", "amount": "40.00"}],
            },
        }
    ]
    nothing = {"clicks": 0, "installs": 0, "deposits": 0}
    for filter in (
        *({"offerId": other} for other in world.not_ours("offer_id")),
        *({"partnerId": other} for other in world.not_ours("partner_id")),
        *({"trackingLinkId": other} for other in world.not_ours("link_id")),
    ):
        data = await partner.data(query, {"input": {**window, "filter": filter}})
        assert data["report"]["totals"] == nothing, filter
    admin = await graphql_as(client)
    everything = await admin.data(query, {"input": window})
    assert everything["report"]["totals"] == {"clicks": 3, "installs": 1, "deposits": 2}


# --- mutations ------------------------------------------------------------------------

RECORD = """
mutation ($input: RecordConversionInput!) {
  recordConversion(input: $input) {
    __typename
    ... on ClickNotFound { clickId }
    ... on ValidationErrors { errors { field code message } }
  }
}
"""


def _without(answer: Any, id_: str) -> Any:
    """An answer with one id blanked out, to compare answers about different ids."""
    if isinstance(answer, dict):
        return {key: _without(value, id_) for key, value in answer.items()}
    if isinstance(answer, list):
        return [_without(value, id_) for value in answer]
    return "<id>" if answer == id_ else answer


async def test_record_conversion(partner: GraphQL, world: World) -> None:
    own = await partner.data(RECORD, {"input": {"clickId": world.ours.click_id, "type": "INSTALL"}})
    assert own["recordConversion"]["__typename"] == "ConversionRecorded"

    nothing = str(uuid.uuid4())
    for other in world.not_ours("click_id"):
        for extra in (
            {},
            {"test": True},
            {"amount": "NaN"},
            {"occurredAt": "2000-01-01T00:00:00Z"},
        ):
            answers = [
                _without(
                    await partner.data(
                        RECORD, {"input": {"clickId": id_, "type": "DEPOSIT", **extra}}
                    ),
                    id_,
                )
                for id_ in (other, nothing)
            ]
            assert answers[0] == answers[1], (other, extra)
        answer = await partner.data(RECORD, {"input": {"clickId": other, "type": "INSTALL"}})
        assert answer == {"recordConversion": {"__typename": "ClickNotFound", "clickId": other}}
    # Each of the other clicks kept only its seeded conversion.
    assert await Conversion.count().where(Conversion.click == world.theirs.click_id) == 1
    assert await Conversion.count().where(Conversion.click == world.stray_click_id) == 1


RECORD_MANY = """
mutation ($inputs: [RecordConversionInput!]!) {
  recordConversions(inputs: $inputs) {
    __typename
    ... on ClickNotFound { clickId }
  }
}
"""


async def test_record_conversions(partner: GraphQL, world: World) -> None:
    others = world.not_ours("click_id")
    inputs = [{"clickId": world.ours.click_id, "type": "INSTALL"}] + [
        {"clickId": other, "type": "INSTALL"} for other in others
    ]
    answer = await partner.data(RECORD_MANY, {"inputs": inputs})
    assert answer["recordConversions"] == [{"__typename": "ConversionRecorded"}] + [
        {"__typename": "ClickNotFound", "clickId": other} for other in others
    ]
    assert await Conversion.count().where(Conversion.click == world.theirs.click_id) == 1
    assert await Conversion.count().where(Conversion.click == world.stray_click_id) == 1


RULE_MUTATIONS = {
    "updatePostbackRule": (
        "mutation ($id: UUID!) { updatePostbackRule(id: $id, input: {enabled: false}) {"
        " __typename ... on PostbackRuleNotFound { id } } }"
    ),
    "deletePostbackRule": (
        "mutation ($id: UUID!) { deletePostbackRule(id: $id) {"
        " __typename ... on PostbackRuleNotFound { id } } }"
    ),
}
CREATE_RULE = """
mutation ($partner: UUID!) {
  createPostbackRule(input: {partnerId: $partner, events: [INSTALL],
                             urlTemplate: "https://x.example/pb"}) {
    __typename
    ... on PostbackRuleSaved { rule { id } }
    ... on ValidationErrors { errors { field code message } }
  }
}
"""
TEST_RULE = "mutation ($id: UUID!) { testPostbackRule(id: $id) { statusCode } }"


async def test_postback_rule_mutations(partner: GraphQL, world: World) -> None:
    """A partner's write key manages its own rules; another's answer as a missing id."""
    own = await partner.data(CREATE_RULE, {"partner": world.ours.partner_id})
    assert own["createPostbackRule"]["__typename"] == "PostbackRuleSaved"
    nothing = str(uuid.uuid4())
    for other in world.not_ours("partner_id"):
        answers = [
            _without(await partner.data(CREATE_RULE, {"partner": id_}), id_)
            for id_ in (other, nothing)
        ]
        assert answers[0] == answers[1]
        [error] = answers[0]["createPostbackRule"]["errors"]
        assert (error["field"], error["code"]) == ("partnerId", "not_found")
    for other in world.not_ours("rule_id"):
        for field, mutation in RULE_MUTATIONS.items():
            answer = await partner.data(mutation, {"id": other})
            assert answer == {field: {"__typename": "PostbackRuleNotFound", "id": other}}
        answers = []
        for id_ in (other, nothing):
            [error] = await partner.errors(TEST_RULE, {"id": id_})
            answers.append(_without(error, id_))
        assert answers[0] == answers[1]
        assert answers[0]["extensions"]["errors"][0]["code"] == "not_found"
    rules = await PostbackRule.select().where(PostbackRule.id == world.theirs.rule_id)
    assert [rule["enabled"] for rule in rules] == [True]
    deleted = await partner.data(RULE_MUTATIONS["deletePostbackRule"], {"id": world.ours.rule_id})
    assert deleted["deletePostbackRule"]["__typename"] == "PostbackRuleDeleted"


CREATE_CLICK = """
mutation ($input: CreateClickInput!) { createClick(input: $input) { id trackingLink { id } } }
"""


async def test_create_click(partner: GraphQL, world: World) -> None:
    own = await partner.data(CREATE_CLICK, {"input": {"trackingLinkId": world.ours.link_id}})
    assert own["createClick"]["trackingLink"] == {"id": world.ours.link_id}
    before = await Click.count()

    nothing = str(uuid.uuid4())
    for other in world.not_ours("link_id"):
        answers = []
        for id_ in (other, nothing):
            [error] = await partner.errors(CREATE_CLICK, {"input": {"trackingLinkId": id_}})
            answers.append(_without(error, id_))
        assert answers[0] == answers[1]
        assert answers[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert answers[0]["extensions"]["errors"][0]["code"] == "not_found"
    # A click without a link would be nobody's: a partner's key must name one of its own.
    [error] = await partner.errors(CREATE_CLICK, {"input": {"playerId": "p-1"}})
    assert [(e["field"], e["code"]) for e in error["extensions"]["errors"]] == [
        ("trackingLinkId", "required")
    ]
    assert await Click.count() == before


# Configuration needs an admin key, and a partner's key is never one: FORBIDDEN by
# scope, whatever the ids name, its own included, so the answer says nothing of them.
ADMIN_ONLY = {
    "createOffer": (
        'mutation { createOffer(input: {name: "x", landingUrl: "https://x.example/"}) { id } }',
        {},
    ),
    "updateOffer": (
        'mutation ($id: UUID!) { updateOffer(id: $id, input: {name: "mine now"}) { id } }',
        {"id": "offer_id"},
    ),
    "rotateFireSecret": (
        "mutation ($id: UUID!) { rotateFireSecret(offerId: $id) { secret } }",
        {"id": "offer_id"},
    ),
    "createTrackingLink": (
        "mutation ($id: UUID!, $partner: UUID!) {"
        " createTrackingLink(input: {offerId: $id, partnerId: $partner}) { id } }",
        {"id": "offer_id", "partner": "partner_id"},
    ),
    "createPartner": ('mutation { createPartner(input: {name: "x"}) { id } }', {}),
    "createApiKey": (
        "mutation ($partner: UUID!) {"
        ' createApiKey(input: {name: "x", scope: WRITE, partnerId: $partner}) { key } }',
        {"partner": "partner_id"},
    ),
    "revokeApiKey": (
        "mutation ($id: UUID!) { revokeApiKey(id: $id) { __typename } }",
        {"id": "key_id"},
    ),
    "setConversionStatus": (
        "mutation ($id: UUID!) { setConversionStatus(input: {ids: [$id], status: REVERSED})"
        " { __typename } }",
        {"id": "conversion_id"},
    ),
}


async def _counts() -> list[int]:
    approved = Conversion.count().where(Conversion.status == "approved")
    return [await table.count() for table in (Offer, TrackingLink, Partner, ApiKey)] + [
        await approved
    ]


@pytest.mark.parametrize("field", sorted(ADMIN_ONLY))
async def test_admin_only_mutation(partner: GraphQL, world: World, field: str) -> None:
    mutation, variables = ADMIN_ONLY[field]
    key_ids = await ApiKey.select(ApiKey.id).output(as_list=True)
    before = await _counts()
    for side in (world.ours, world.theirs):
        values = {
            name: str(key_ids[0]) if kind == "key_id" else getattr(side, kind)
            for name, kind in variables.items()
        }
        [error] = await partner.errors(mutation, values)
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert await _counts() == before
    assert await ApiKey.count().where(ApiKey.revoked_at.is_not_null()) == 0


# --- subscriptions --------------------------------------------------------------------


async def test_conversion_recorded(partner: GraphQL, world: World, app: Litestar) -> None:
    """The live feed sends a partner's key its own partner's conversions alone."""
    async with (
        served_here(app) as base_url,
        live_socket(base_url, key_payload(partner.secret)) as socket,
    ):
        await socket.subscribe()
        await subscribed_here(1)
        for click_id in (world.theirs.click_id, world.stray_click_id, world.ours.click_id):
            await seed_conversion(uuid.UUID(click_id), "deposit", transaction_id="live")
        await socket.read_until("1", 1)
        assert await socket.read_for(0.4) is None
    [conversion] = socket.received["1"]
    assert conversion["click"]["id"] == world.ours.click_id


COVERAGE: dict[str, Callable[..., Any]] = {
    "Query.click": test_click_by_id,
    "Query.clicks": test_clicks_page,
    "Query.conversion": test_conversion_by_id,
    "Query.conversions": test_conversions_page,
    "Query.offer": test_offer_by_id,
    "Query.offers": test_offers_page,
    "Query.trackingLink": test_tracking_link_by_id,
    "Query.trackingLinks": test_tracking_links_page,
    "Query.partner": test_partner_by_id,
    "Query.partners": test_partners_page,
    "Mutation.recordConversion": test_record_conversion,
    "Mutation.recordConversions": test_record_conversions,
    "Mutation.createClick": test_create_click,
    "Query.postbackDeliveries": test_postback_deliveries_page,
    "Query.fireRejections": test_fire_rejections_page,
    "Query.report": test_report,
    "Mutation.createPostbackRule": test_postback_rule_mutations,
    "Mutation.updatePostbackRule": test_postback_rule_mutations,
    "Mutation.deletePostbackRule": test_postback_rule_mutations,
    "Mutation.testPostbackRule": test_postback_rule_mutations,
    **{f"Mutation.{field}": test_admin_only_mutation for field in ADMIN_ONLY},
    "Subscription.conversionRecorded": test_conversion_recorded,
}


def test_every_query_and_mutation_has_a_partner_scope_test() -> None:
    printed = build_schema(schema.as_str())
    fields = set()
    for root in ("Query", "Mutation", "Subscription"):
        root_type = printed.get_type(root)
        assert isinstance(root_type, GraphQLObjectType)
        fields |= {f"{root}.{name}" for name in root_type.fields}
    uncovered = sorted(fields - COVERAGE.keys())
    assert not uncovered, (
        f"no partner-scope test for {uncovered}: add one to tests/test_partner_scope.py "
        "showing what a partner's key sees there, and map the field to it in COVERAGE"
    )
    assert not sorted(COVERAGE.keys() - fields), "COVERAGE names fields the schema lacks"
    for test in COVERAGE.values():
        # A test of this module that pytest runs, not a helper.
        assert test.__name__.startswith("test_")
        assert globals()[test.__name__] is test
