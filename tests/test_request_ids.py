"""Request ids (SPEC part two, "Operations"): every answer carries `X-Request-Id`, the
front door's and the framework's alike; a sane incoming one is kept, anything else
replaced; GraphQL names the same id; a log line written inside a request carries it.
tests/test_json_logs.py reads a served app's whole log."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid

import httpx
import pytest

from api import request_ids
from api.logs import json_formatter
from tests.graphql_client import bearer, issue_key
from tests.support import new_click

ID = "X-Request-Id"


async def answers(client: httpx.AsyncClient, headers: dict[str, str]) -> list[httpx.Response]:
    """One answer of each kind: the front door's (a fire, a refused fire, its 431), the
    framework's routes, errors and 404s, GraphQL's."""
    click = await new_click()
    key = await issue_key()
    return [
        await client.get(f"/convert/{click}?type=install", headers=headers),
        await client.get(f"/convert/{click}?type=refund", headers=headers),
        await client.get("/convert/x", headers=headers | {"X-Big": "x" * 20_000}),
        await client.post(f"/convert/{click}", headers=headers, data={"type": "registration"}),
        await client.get(f"/track/{uuid.uuid4()}", headers=headers),
        await client.get("/healthz", headers=headers),
        await client.delete("/healthz", headers=headers),
        await client.get("/no/such/path", headers=headers),
        await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers=headers | bearer(key)
        ),
        await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers),
    ]


async def test_every_answer_carries_a_fresh_id(client: httpx.AsyncClient) -> None:
    got = await answers(client, {})
    statuses = [answer.status_code for answer in got]
    assert statuses == [202, 422, 431, 202, 404, 200, 405, 404, 200, 401]
    ids = [answer.headers.get_list(ID) for answer in got]
    assert all(len(one) == 1 for one in ids), ids
    assert len({one[0] for one in ids}) == len(got)
    assert all(request_ids.SANE.fullmatch(one[0].encode()) for one in ids)


@pytest.mark.parametrize("sane", ["lb-7f3a.9c_2e", "0" * 128, "a", str(uuid.uuid4())])
async def test_a_sane_incoming_id_is_kept(client: httpx.AsyncClient, sane: str) -> None:
    for answer in await answers(client, {ID: sane}):
        assert answer.headers.get_list(ID) == [sane], answer.request.url


@pytest.mark.parametrize("insane", ["", "x" * 129, "has space", "semi;colon", "a/b", "a\\nb"])
async def test_anything_else_is_replaced(client: httpx.AsyncClient, insane: str) -> None:
    for answer in await answers(client, {ID: insane}):
        [replaced] = answer.headers.get_list(ID)
        assert replaced != insane
        assert request_ids.SANE.fullmatch(replaced.encode())


async def test_graphql_errors_name_the_same_id(client: httpx.AsyncClient) -> None:
    key = await issue_key()
    body = {"query": "{ nope }"}
    response = await client.post("/graphql", json=body, headers=bearer(key) | {ID: "trace-1"})
    assert response.headers.get_list(ID) == ["trace-1"]


def test_a_line_logged_inside_a_request_carries_its_id() -> None:
    formatter = json_formatter()
    record = logging.LogRecord("api.app", logging.WARNING, __file__, 1, "store %s", ("down",), None)

    def inside_a_request() -> str:
        request_ids.begin({"type": "http", "headers": [(b"x-request-id", b"trace-2")]})
        return formatter.format(record)

    line = json.loads(contextvars.Context().run(inside_a_request))
    assert line["request_id"] == "trace-2"
    assert (line["event"], line["level"], line["logger"]) == ("store down", "warning", "api.app")
    outside = json.loads(contextvars.Context().run(formatter.format, record))
    assert "request_id" not in outside
