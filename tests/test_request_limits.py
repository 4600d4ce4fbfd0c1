"""Bounds on what one client may send: fires per minute, body sizes, and the OpenAPI
description that tells clients (and fuzzers) what the pixel takes."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from api.settings import Settings
from models.keys import Scope, create_api_key
from models.store.tables import Click
from models.tracking.offers import create_offer
from tests.support import count_conversions, new_click, new_link, stored_conversions


def client_for(app: Litestar, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_the_optional_rate_limit_answers_429_per_client_address(db) -> None:
    app = create_app(Settings.from_env({"PIXEL_RATE_LIMIT_PER_MINUTE": "2"}))
    click_id = await new_click()
    url = f"/convert/{click_id}?type=deposit"
    async with (
        client_for(app, "198.51.100.1") as flooding,
        client_for(app, "198.51.100.2") as other,
    ):
        statuses = [(await flooding.get(url)).status_code for _ in range(3)]
        limited = await flooding.get(url)
        elsewhere = await other.get(url)
    assert statuses == [202, 202, 429]
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert limited.json()["errors"][0]["code"] == "rate_limited"
    assert limited.headers["access-control-allow-origin"] == "*"
    assert elsewhere.status_code == 202
    assert await count_conversions() == 3


async def test_ipv6_clients_are_counted_per_64(db) -> None:
    app = create_app(Settings.from_env({"PIXEL_RATE_LIMIT_PER_MINUTE": "1"}))
    click_id = await new_click()
    url = f"/convert/{click_id}?type=deposit"
    async with (
        client_for(app, "2001:db8:aa:bb::1") as first,
        client_for(app, "2001:db8:aa:bb:1234:5678:9abc:def0") as same_subscriber,
        client_for(app, "2001:db8:aa:cc::1") as other_subscriber,
    ):
        assert (await first.get(url)).status_code == 202
        assert (await same_subscriber.get(url)).status_code == 429
        assert (await other_subscriber.get(url)).status_code == 202


async def test_the_tracking_link_has_its_own_rate_limit(db) -> None:
    app = create_app(Settings.from_env({"TRACK_RATE_LIMIT_PER_MINUTE": "2"}))
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id, "partner-42")
    click_id = await new_click()
    async with (
        client_for(app, "198.51.100.1") as flooding,
        client_for(app, "198.51.100.2") as other,
    ):
        statuses = [(await flooding.get(f"/track/{link.id}")).status_code for _ in range(3)]
        limited = await flooding.get(f"/track/{link.id}")
        elsewhere = await other.get(f"/track/{link.id}")
        # Fires are counted apart, and not limited without their own setting.
        fired = await flooding.get(f"/convert/{click_id}?type=install")
    assert statuses == [302, 302, 429]
    assert limited.json()["errors"][0]["code"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert limited.headers["cache-control"] == "no-store"
    assert elsewhere.status_code == 302
    assert fired.status_code == 202
    # The one fired click and the three visits allowed.
    assert await Click.count() == 4


@pytest.mark.parametrize(
    "forwarded_for", ["fe80::1%eth0", f"fe80::1%{'x' * 300}", "198.51.100.9, fe80::2%25lo"]
)
async def test_a_zone_id_behind_a_trusted_proxy_is_never_stored(db, forwarded_for: str) -> None:
    app = create_app(Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8"}))
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id, "partner-42")
    click_id = await new_click()
    headers = {"X-Forwarded-For": forwarded_for}
    async with client_for(app, "10.0.0.5") as proxied:
        visited = await proxied.get(f"/track/{link.id}", headers=headers)
        fired = await proxied.get(f"/convert/{click_id}?type=install", headers=headers)
    assert visited.status_code == 302
    assert fired.status_code == 202
    [visit] = await Click.select(Click.ip).where(Click.tracking_link == link.id)
    [conversion] = await stored_conversions(click_id)
    # Garbage in the chain: the trusted proxy's own address is the last one we can vouch for.
    assert visit["ip"] == "10.0.0.5"
    assert conversion["ip"] == "10.0.0.5"


async def test_without_the_setting_there_is_no_limit(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    statuses = {
        (await client.get(f"/convert/{click_id}?type=deposit")).status_code for _ in range(30)
    }
    assert statuses == {202}


async def test_a_graphql_request_over_the_body_limit_is_refused(client: httpx.AsyncClient) -> None:
    key = await create_api_key("dashboard", Scope.READ)
    # Over the default 1 MiB.
    oversized = "query { " + "a " * 600_000 + "}"
    response = await client.post(
        "/graphql", json={"query": oversized}, headers={"Authorization": f"Bearer {key.secret}"}
    )
    assert response.status_code == 413


async def test_oversized_headers_are_refused_with_431(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(
        f"/convert/{click_id}?type=install", headers={"X-Padding": "x" * 17 * 1024}
    )
    assert response.status_code == 431
    assert response.json()["errors"][0]["code"] == "headers_too_large"
    assert response.headers["access-control-allow-origin"] == "*"
    assert await count_conversions() == 0


async def test_the_openapi_description_names_the_pixels_parameters(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    for method in ("get", "post", "head"):
        operation = document["paths"]["/convert/{click_id}"][method]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert names >= {
            "click_id",
            "type",
            "test",
            "player_id",
            "currency",
            "amount",
            "time",
            "transaction_id",
        }
        assert {"202", "404", "409", "422", "503"} <= set(operation["responses"])
