"""What `/schema/openapi.json` says against what the app does, over HTTP.

The faces' parameters are declared once (pixel/query.py, pixel/track.py): these tests
fail if the description and the reader part, or if a described method is not answered.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import httpx
import pytest

from models.clicks.records import SUB_ID_NAMES
from models.conversions.input import RawConversion
from models.tracking.offers import create_offer
from pixel.query import PIXEL_PARAMETERS, SIGNATURE_PARAMETER
from pixel.track import VISIT_PARAMETERS
from tests.graphql_client import bearer, issue_key
from tests.support import new_click, new_link

PIXEL = "/convert/{click_id}"
TRACKING = "/track/{tracking_id}"


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _query_names(operation: dict[str, Any]) -> set[str]:
    return {
        parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "query"
    }


async def test_the_described_query_parameters_are_the_ones_the_readers_accept(
    client: httpx.AsyncClient,
) -> None:
    paths = (await _document(client))["paths"]
    for method in ("get", "post", "head"):
        assert _query_names(paths[PIXEL][method]) == PIXEL_PARAMETERS
    form = paths[PIXEL]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert set(form["schema"]["properties"]) == PIXEL_PARAMETERS
    for method in ("get", "head"):
        assert _query_names(paths[TRACKING][method]) == VISIT_PARAMETERS
    # And each reader hands every one of them to its service.
    raw_fields = {field.name for field in fields(RawConversion)} - {"click_id"}
    assert raw_fields | {SIGNATURE_PARAMETER} == PIXEL_PARAMETERS
    assert {"type", *SUB_ID_NAMES} == VISIT_PARAMETERS


async def test_every_described_parameter_is_read_and_an_undescribed_one_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    """Given twice, a parameter the faces read is a `repeated` error naming it; one they
    ignore is ignored however often it comes."""
    paths = (await _document(client))["paths"]
    click_id = await new_click()
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id)
    faces = (
        (PIXEL, f"/convert/{click_id}", "type=install&", 202),
        (TRACKING, f"/track/{link.id}", "", 302),
    )
    for path, prefix, required, success in faces:
        for name in _query_names(paths[path]["get"]):
            given = "" if name == "type" else required
            response = await client.get(f"{prefix}?{given}{name}=a&{name}=b")
            assert response.status_code == 422, (path, name)
            error = response.json()["errors"][0]
            assert (error["field"], error["code"]) == (name, "repeated")
        undescribed = await client.get(f"{prefix}?{required}cb=1&cb=2")
        assert undescribed.status_code == success, path


async def test_the_click_and_tracking_ids_are_described_as_uuid_strings(
    client: httpx.AsyncClient,
) -> None:
    paths = (await _document(client))["paths"]
    for path, name in ((PIXEL, "click_id"), (TRACKING, "tracking_id")):
        for operation in paths[path].values():
            (parameter,) = [p for p in operation["parameters"] if p["name"] == name]
            assert (parameter["schema"]["type"], parameter["schema"]["format"]) == (
                "string",
                "uuid",
            )


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/graphql", {"GET", "POST", "OPTIONS"}), ("/track/x", {"GET", "HEAD", "OPTIONS"})],
)
async def test_options_lists_every_method_the_document_describes(
    client: httpx.AsyncClient, path: str, allowed: set[str]
) -> None:
    response = await client.options(path)
    assert response.status_code == 204
    assert {method.strip() for method in response.headers["allow"].split(",")} == allowed
    described = (await _document(client))["paths"]
    template = TRACKING if path.startswith("/track/") else path
    assert {method.upper() for method in described[template]} | {"OPTIONS"} == allowed


async def test_the_pixel_script_is_javascript_with_or_without_its_body(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    assert set(document["paths"]["/pixel.js"]["get"]["responses"]["200"]["content"]) == {
        "text/javascript"
    }
    full = await client.get("/pixel.js")
    headers_only = await client.head("/pixel.js")
    assert full.headers["content-type"].startswith("text/javascript")
    assert (headers_only.status_code, headers_only.content) == (200, b"")
    assert headers_only.headers["etag"] == full.headers["etag"]
    unchanged = await client.head("/pixel.js", headers={"If-None-Match": full.headers["etag"]})
    assert unchanged.status_code == 304


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'"a string"', "application/json"),
        (b"null", "application/json"),
        (b'{"query": "{ __typename }", "operationName": {}}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'[{"query": "{ __typename }"}]', "application/json"),
        (b"query={__typename}", "application/x-www-form-urlencoded"),
    ],
)
async def test_graphql_refuses_what_it_cannot_read_with_the_described_400(
    client: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    headers = {**bearer(await issue_key()), "Content-Type": content_type}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    described = (await _document(client))["paths"]["/graphql"]["post"]["responses"]["400"]
    assert set(described["content"]) == {"text/plain"}


async def test_graphql_without_a_key_is_the_described_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 401
    operation = (await _document(client))["paths"]["/graphql"]["post"]
    assert operation["security"] == [{"ApiKey": []}]
    assert "401" in operation["responses"]


async def test_readiness_describes_its_503(client: httpx.AsyncClient) -> None:
    responses = (await _document(client))["paths"]["/readyz"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
    assert set(responses["503"]["content"]) == {"application/json"}


async def test_patterns_are_ecma_regexes_and_the_amounts_pattern_is_the_readers(
    client: httpx.AsyncClient,
) -> None:
    """JSON Schema reads patterns as ECMA-262: Python's named groups would break a
    JavaScript validator (Swagger UI's, a generated TypeScript client's)."""
    response = await client.get("/schema/openapi.json")
    assert "(?P<" not in response.text
    paths = response.json()["paths"]
    (amount,) = [p for p in paths[PIXEL]["get"]["parameters"] if p["name"] == "amount"]
    pattern = re.compile(amount["schema"]["pattern"])
    assert [bool(pattern.match(value)) for value in ("40", "40.5", "40.00")] == [True] * 3
    assert [bool(pattern.match(value)) for value in ("1e3", "-5", "10.005", "NaN", "٤٠")] == [
        False
    ] * 5
