"""API keys on /graphql: 401 without a usable key, FORBIDDEN beyond the key's scope."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from models.keys import Scope, create_api_key, hash_key, revoke_api_key
from models.store.tables import ApiKey
from tests.graphql_client import GraphQL, bearer, issue_key, seed_click

READ_QUERY = "{ clicks(first: 1) { totalCount } }"
WRITE_MUTATION = "mutation { createClick(input: {}) { id } }"


async def _post(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/graphql", json={"query": READ_QUERY}, headers=headers)


def _assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    # In GraphQL's own shape, so clients read it like any other error.
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"]


async def test_a_request_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    _assert_unauthorized(await _post(client, {}))


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "cvk_not_a_bearer_header", "Bearer cvk_unknown"],
)
async def test_a_malformed_or_unknown_key_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    await issue_key(Scope.ADMIN)  # a real key exists, and is not this one
    _assert_unauthorized(await _post(client, {"Authorization": authorization}))


async def test_a_get_query_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    _assert_unauthorized(await client.get("/graphql", params={"query": READ_QUERY}))


async def test_a_revoked_key_is_401_from_the_moment_it_is_revoked(
    client: httpx.AsyncClient,
) -> None:
    issued = await create_api_key("soon revoked", Scope.ADMIN)
    assert (await _post(client, bearer(issued.secret))).status_code == 200
    assert await revoke_api_key(issued.id)
    _assert_unauthorized(await _post(client, bearer(issued.secret)))


async def test_the_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    secret = await issue_key(Scope.READ)
    response = await _post(client, {"Authorization": f"bearer {secret}"})
    assert response.status_code == 200
    assert response.json() == {"data": {"clicks": {"totalCount": 0}}}


async def test_keys_are_stored_as_hashes_only(db: object) -> None:
    issued = await create_api_key("hashed", Scope.READ)
    row = await ApiKey.objects().where(ApiKey.id == issued.id).first()
    assert row is not None
    assert row.key_hash == hash_key(issued.secret)
    assert issued.secret not in {str(value) for value in row.to_dict().values()}


@pytest.mark.parametrize("scope", list(Scope))
async def test_every_scope_may_query(client: httpx.AsyncClient, scope: Scope) -> None:
    click_id = await seed_click()
    graphql = GraphQL(client, await issue_key(scope))
    data = await graphql.data("query($id: UUID!) { click(id: $id) { id } }", {"id": str(click_id)})
    assert data == {"click": {"id": str(click_id)}}


async def test_a_read_key_may_not_mutate(client: httpx.AsyncClient) -> None:
    graphql = GraphQL(client, await issue_key(Scope.READ))
    record = (
        "mutation($id: UUID!) { recordConversion(input: {clickId: $id, type: INSTALL})"
        " { __typename } }"
    )
    for mutation, variables in ((WRITE_MUTATION, None), (record, {"id": str(uuid.uuid4())})):
        response = await graphql.post(mutation, variables)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await graphql.data(READ_QUERY)) == {"clicks": {"totalCount": 0}}


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.ADMIN])
async def test_write_and_admin_keys_may_mutate(client: httpx.AsyncClient, scope: Scope) -> None:
    graphql = GraphQL(client, await issue_key(scope))
    created = await graphql.data(WRITE_MUTATION)
    click_id = created["createClick"]["id"]
    recorded = await graphql.data(
        "mutation($id: UUID!) { recordConversion(input: {clickId: $id, type: INSTALL})"
        " { __typename } }",
        {"id": click_id},
    )
    assert recorded == {"recordConversion": {"__typename": "ConversionRecorded"}}


async def test_the_pixel_and_healthz_need_no_key(client: httpx.AsyncClient) -> None:
    click_id = await seed_click()
    assert (await client.get("/healthz")).status_code == 200
    fired = await client.get(f"/convert/{click_id}", params={"type": "install"})
    assert fired.status_code == 202


async def _cli(*arguments: str) -> tuple[int, str]:
    """The real `conversions` command, on the test database."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("conversions")),
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ},
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_cli_creates_lists_and_revokes_keys(client: httpx.AsyncClient) -> None:
    status, output = await _cli("create-api-key", "--name", "dashboard", "--scope", "read")
    assert status == 0, output
    secret = output.strip().splitlines()[-1]
    assert (await _post(client, bearer(secret))).status_code == 200

    status, listing = await _cli("list-api-keys")
    assert status == 0, listing
    [row] = [line.split("\t") for line in listing.splitlines() if "\tdashboard\t" in line]
    key_id, _, scope, _, revoked_at, partner = row
    assert (scope, revoked_at, partner) == ("read", "-", "-")
    assert secret not in listing

    status, output = await _cli("revoke-api-key", key_id)
    assert status == 0, output
    _assert_unauthorized(await _post(client, bearer(secret)))
    status, listing = await _cli("list-api-keys")
    [row] = [line.split("\t") for line in listing.splitlines() if line.startswith(key_id)]
    assert row[1:3] == ["dashboard", "read"]
    assert row[4] != "-", "the key shows when it was revoked"

    status, output = await _cli("revoke-api-key", key_id)
    assert status == 1, "revoking twice says there was nothing left to revoke"
