"""Partners and their keys over GraphQL and the CLI: create, read, page, bind, revoke."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from piccolo.engine.base import Engine

from models.keys import Scope
from models.partners.partners import create_partner
from models.store.tables import ApiKey, Partner
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, bearer, graphql_as, ids_of
from tests.test_graphql_performance import counted_statements

CREATE_PARTNER = """
mutation ($input: CreatePartnerInput!) { createPartner(input: $input) { id name createdAt } }
"""

PARTNERS = """
query ($first: Int, $after: String) {
  partners(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name trackingLinks(first: 2) { totalCount edges { node { id } } } } }
  }
}
"""

CREATE_API_KEY = """
mutation ($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { key apiKey { id name scope partner { id name } createdAt } }
}
"""

REVOKE_API_KEY = """
mutation ($id: UUID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on ApiKeyRevoked { apiKey { id revokedAt } }
    ... on ApiKeyNotFound { id }
  }
}
"""


async def new_link_for(offer_id: uuid.UUID, partner_id: uuid.UUID) -> uuid.UUID:
    return (await create_tracking_link(offer_id, partner_id)).id


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.ADMIN)


async def test_an_admin_creates_a_partner_and_reads_it_back(admin: GraphQL) -> None:
    created = (await admin.data(CREATE_PARTNER, {"input": {"name": "  Acme Media  "}}))[
        "createPartner"
    ]
    assert created["name"] == "Acme Media"
    read = await admin.data(
        "query ($id: UUID!, $missing: UUID!) {"
        " partner(id: $id) { id name createdAt } nothing: partner(id: $missing) { id } }",
        {"id": created["id"], "missing": str(uuid.uuid4())},
    )
    assert read == {"partner": created, "nothing": None}


@pytest.mark.parametrize(
    ("name", "code"), [(" ", "required"), ("x" * 256, "too_long"), ("a\x00b", "control_character")]
)
async def test_a_bad_partner_name_is_refused_and_nothing_stored(
    admin: GraphQL, name: str, code: str
) -> None:
    [error] = await admin.errors(CREATE_PARTNER, {"input": {"name": name}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [(e["field"], e["code"]) for e in error["extensions"]["errors"]] == [("name", code)]
    assert await Partner.count() == 0


@pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
async def test_only_an_admin_creates_partners_and_keys(
    client: httpx.AsyncClient, scope: Scope
) -> None:
    graphql = await graphql_as(client, scope)
    for mutation, variables in (
        (CREATE_PARTNER, {"input": {"name": "Acme"}}),
        (CREATE_API_KEY, {"input": {"name": "more", "scope": "ADMIN"}}),
        (REVOKE_API_KEY, {"id": str(uuid.uuid4())}),
    ):
        [error] = await graphql.errors(mutation, variables)
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert await Partner.count() == 0
    assert await ApiKey.count() == 1


async def test_partners_and_their_links_page_newest_first_in_few_statements(
    admin: GraphQL, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    offer = await create_offer("Casino", "https://casino.example/")
    partners = [await create_partner(f"Partner {n}") for n in range(3)]
    links = {
        partner.id: [await new_link_for(offer.id, partner.id) for _ in range(3)]
        for partner in partners
    }
    with counted_statements(db, monkeypatch) as statements:
        first = (await admin.data(PARTNERS, {"first": 2}))["partners"]
    # The key, the page, its count, then two statements for every partner's page of
    # links and one for their counts: never one per partner.
    assert len(statements) == 6, statements
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await admin.data(PARTNERS, {"after": first["pageInfo"]["endCursor"]}))["partners"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert ids_of(first) + ids_of(rest) == [str(partner.id) for partner in reversed(partners)]
    for edge in first["edges"] + rest["edges"]:
        own = links[uuid.UUID(edge["node"]["id"])]
        page = edge["node"]["trackingLinks"]
        assert page["totalCount"] == 3
        assert ids_of(page) == [str(link_id) for link_id in reversed(own)][:2]


async def test_a_partners_link_pages_follow_their_cursor(admin: GraphQL) -> None:
    offer = await create_offer("Casino", "https://casino.example/")
    partner = await create_partner("Acme")
    created = [await new_link_for(offer.id, partner.id) for _ in range(3)]
    query = """query ($id: UUID!, $after: String) {
      partner(id: $id) {
        trackingLinks(first: 2, after: $after) {
          pageInfo { hasNextPage endCursor } edges { node { id partner { id } } }
        }
      }
    }"""
    first = (await admin.data(query, {"id": str(partner.id)}))["partner"]["trackingLinks"]
    after = first["pageInfo"]["endCursor"]
    rest = (await admin.data(query, {"id": str(partner.id), "after": after}))["partner"][
        "trackingLinks"
    ]
    assert ids_of(first) + ids_of(rest) == [str(link_id) for link_id in reversed(created)]
    assert {edge["node"]["partner"]["id"] for edge in first["edges"]} == {str(partner.id)}


async def test_create_api_key_shows_the_key_once_and_binds_it_to_a_partner(
    admin: GraphQL, client: httpx.AsyncClient
) -> None:
    partner = await create_partner("Acme")
    created = (
        await admin.data(
            CREATE_API_KEY,
            {"input": {"name": "Acme dashboard", "scope": "READ", "partnerId": str(partner.id)}},
        )
    )["createApiKey"]
    assert created["key"].startswith("cvk_")
    assert created["apiKey"]["name"] == "Acme dashboard"
    assert created["apiKey"]["scope"] == "READ"
    assert created["apiKey"]["partner"] == {"id": str(partner.id), "name": "Acme"}
    stored = await ApiKey.objects().where(ApiKey.id == created["apiKey"]["id"]).first()
    assert stored is not None
    assert created["key"] not in {str(value) for value in stored.to_dict().values()}

    partner_key = GraphQL(client, created["key"])
    mine = await partner_key.data("{ partners { edges { node { name } } } }")
    assert mine == {"partners": {"edges": [{"node": {"name": "Acme"}}]}}


async def test_an_unbound_key_has_no_partner(admin: GraphQL) -> None:
    created = (await admin.data(CREATE_API_KEY, {"input": {"name": "BI", "scope": "WRITE"}}))[
        "createApiKey"
    ]
    assert created["apiKey"]["partner"] is None
    assert created["apiKey"]["scope"] == "WRITE"


async def test_a_partner_key_is_never_admin_and_every_bad_field_is_named(admin: GraphQL) -> None:
    [error] = await admin.errors(
        CREATE_API_KEY,
        {"input": {"name": " ", "scope": "ADMIN", "partnerId": str(uuid.uuid4())}},
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {e["field"]: e["code"] for e in error["extensions"]["errors"]} == {
        "name": "required",
        "scope": "not_allowed",
        "partnerId": "not_found",
    }
    partner = await create_partner("Acme")
    [error] = await admin.errors(
        CREATE_API_KEY,
        {"input": {"name": "boss", "scope": "ADMIN", "partnerId": str(partner.id)}},
    )
    assert [(e["field"], e["code"]) for e in error["extensions"]["errors"]] == [
        ("scope", "not_allowed")
    ]
    assert await ApiKey.count() == 1


async def test_revoke_api_key_refuses_the_key_from_its_next_request(
    admin: GraphQL, client: httpx.AsyncClient
) -> None:
    created = (await admin.data(CREATE_API_KEY, {"input": {"name": "BI", "scope": "READ"}}))[
        "createApiKey"
    ]
    reader = GraphQL(client, created["key"])
    assert (await reader.post("{ partners { totalCount } }")).status_code == 200
    key_id = created["apiKey"]["id"]
    revoked = (await admin.data(REVOKE_API_KEY, {"id": key_id}))["revokeApiKey"]
    assert revoked["__typename"] == "ApiKeyRevoked"
    assert revoked["apiKey"]["id"] == key_id
    assert revoked["apiKey"]["revokedAt"] is not None
    assert (await reader.post("{ partners { totalCount } }")).status_code == 401
    # Revoked already, or never issued: no key in use has the id.
    for missing in (key_id, str(uuid.uuid4())):
        answer = (await admin.data(REVOKE_API_KEY, {"id": missing}))["revokeApiKey"]
        assert answer == {"__typename": "ApiKeyNotFound", "id": missing}


async def _cli(*arguments: str) -> tuple[int, str, str]:
    """The real `conversions` command, on the test database."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("conversions")),
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    output, errors = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(), errors.decode()


async def test_the_cli_creates_a_partner_key_that_sees_only_its_partner(
    client: httpx.AsyncClient,
) -> None:
    acme, other = await create_partner("Acme"), await create_partner("Other")
    status, output, errors = await _cli(
        "create-api-key", "--name", "Acme BI", "--scope", "read", "--partner", str(acme.id)
    )
    assert status == 0, errors
    assert f"bound to partner {acme.id}" in output
    secret = output.strip().splitlines()[-1]
    response = await client.post(
        "/graphql",
        json={"query": "{ partners { edges { node { id } } } }"},
        headers=bearer(secret),
    )
    assert response.json() == {"data": {"partners": {"edges": [{"node": {"id": str(acme.id)}}]}}}
    assert str(other.id) not in response.text

    status, listing, _ = await _cli("list-api-keys")
    [row] = [line.split("\t") for line in listing.splitlines() if "\tAcme BI\t" in line]
    assert row[-1] == str(acme.id)


async def test_the_cli_refuses_an_admin_partner_key_and_an_unknown_partner(db: Engine) -> None:
    status, output, errors = await _cli(
        "create-api-key", "--name", "boss", "--scope", "admin", "--partner", str(uuid.uuid4())
    )
    assert status == 2
    assert output == ""
    assert "--scope must be read or write" in errors
    assert "no partner has this --partner" in errors
    assert await ApiKey.count() == 0
