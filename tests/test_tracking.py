"""The tracking link `GET /track/{tracking_id}`, over HTTP, on the engine DATABASE_URL names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from models.errors import InvalidInputError
from models.store.tables import Click, Offer
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from models.tracking.visits import landing_url_with_click_id
from tests.support import new_link

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
# MaxMind's own test address, in the GeoLite2 data as Great Britain.
BRITISH_ADDRESS = "81.2.69.160"


async def tracking_link(landing_url: str = "https://operator.example/welcome") -> uuid.UUID:
    offer = await create_offer("Welcome bonus", landing_url)
    link = await new_link(offer.id, "partner-42", creative="banner-300x250")
    return link.id


async def tracking_link_to_stored_url(landing_url: str) -> uuid.UUID:
    """A link to an offer stored as it is, as create_offer stored them before it kept
    landing URLs in ASCII."""
    offer = Offer(name="Welcome bonus", landing_url=landing_url, created_at=datetime.now(UTC))
    await offer.save()
    link = await new_link(offer.id, "partner-42")
    return link.id


async def all_clicks() -> list[dict[str, Any]]:
    return await Click.select()


def error_codes(response: httpx.Response) -> dict[str | None, str]:
    return {error["field"]: error["code"] for error in response.json()["errors"]}


@asynccontextmanager
async def client_from(
    peer: str, environ: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a client at `peer` reaches it, with settings from `environ`."""
    app = create_app(Settings.from_env(environ or {}))
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_a_visit_creates_a_click_and_redirects_to_the_placeholder(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link("https://operator.example/welcome/{click_id}?ref={click_id}&x=1")
    response = await client.get(
        f"/track/{link_id}",
        params={"type": "PPC", "s1": "campaign-7", "s3": "ad group", "s5": "ü-5"},
        headers={"User-Agent": IPHONE_SAFARI, "Referer": "https://partner.example/review"},
    )
    assert response.status_code == 302
    assert response.content == b""
    [click] = await all_clicks()
    click_id = click["id"]
    assert response.headers["location"] == (
        f"https://operator.example/welcome/{click_id}?ref={click_id}&x=1"
    )
    assert click["tracking_link"] == link_id
    assert click["type"] == "ppc"
    assert [click[name] for name in ("s1", "s2", "s3", "s4", "s5")] == [
        "campaign-7",
        None,
        "ad group",
        None,
        "ü-5",
    ]
    assert click["ip"] == "203.0.113.7"
    assert click["user_agent"] == IPHONE_SAFARI
    assert click["referrer"] == "https://partner.example/review"
    assert (click["browser_family"], click["os_family"], click["device_family"]) == (
        "Mobile Safari",
        "iOS",
        "iPhone",
    )
    # 203.0.113.7 is a documentation address: no country.
    assert click["country"] is None
    assert click["stage"] == 0


async def test_without_a_placeholder_the_click_id_joins_the_landing_urls_own_query(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link("https://operator.example/land?utm=a%20b&click_id=stale&z=#top")
    response = await client.get(f"/track/{link_id}")
    assert response.status_code == 302
    [click] = await all_clicks()
    assert response.headers["location"] == (
        f"https://operator.example/land?utm=a%20b&z=&click_id={click['id']}#top"
    )
    assert click["type"] is None


async def test_a_landing_url_without_a_query_gets_one(client: httpx.AsyncClient) -> None:
    link_id = await tracking_link("https://operator.example/welcome")
    response = await client.get(f"/track/{link_id}")
    [click] = await all_clicks()
    assert (
        response.headers["location"] == f"https://operator.example/welcome?click_id={click['id']}"
    )


async def test_the_click_id_parameter_name_is_configurable(db) -> None:
    link_id = await tracking_link("https://operator.example/welcome?lang=de")
    async with client_from("203.0.113.7", {"CLICK_ID_PARAMETER": "affiliate_click"}) as client:
        response = await client.get(f"/track/{link_id}")
    [click] = await all_clicks()
    location = urlsplit(response.headers["location"])
    assert parse_qs(location.query) == {"lang": ["de"], "affiliate_click": [str(click["id"])]}


def test_a_click_id_parameter_that_would_need_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="click_id_parameter"):
        Settings.from_env({"CLICK_ID_PARAMETER": "click id&x="})


@pytest.mark.parametrize(
    "tracking_id",
    [
        str(uuid.uuid4()),
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000",
        "https:%2F%2Fevil.example",
    ],
)
async def test_an_unknown_or_malformed_tracking_id_is_404_and_no_click(
    client: httpx.AsyncClient, tracking_id: str
) -> None:
    await tracking_link()
    response = await client.get(f"/track/{tracking_id}", params={"type": "seo"})
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert await all_clicks() == []


async def test_a_well_formed_unknown_id_names_the_tracking_id(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/track/{uuid.uuid4()}")
    assert response.json() == {
        "errors": [
            {"field": "tracking_id", "code": "not_found", "message": "no tracking link has this id"}
        ]
    }


async def test_the_redirect_only_ever_goes_to_the_offers_landing_url(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link("https://operator.example/welcome")
    response = await client.get(
        f"/track/{link_id}",
        params={
            "url": "https://evil.example/",
            "redirect": "//evil.example",
            "next": "https://evil.example/",
            "click_id": "https://evil.example/",
        },
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "operator.example",
        "/welcome",
    )
    [click] = await all_clicks()
    assert parse_qs(location.query) == {"click_id": [str(click["id"])]}


async def test_sub_ids_are_bounded_in_length(client: httpx.AsyncClient) -> None:
    link_id = await tracking_link()
    longest = "x" * 255
    accepted = await client.get(f"/track/{link_id}", params={"s2": longest})
    assert accepted.status_code == 302
    [click] = await all_clicks()
    assert click["s2"] == longest

    refused = await client.get(
        f"/track/{link_id}", params={"s1": "x" * 256, "s4": "tab\there", "type": "seo"}
    )
    assert refused.status_code == 422
    assert error_codes(refused) == {"s1": "too_long", "s4": "control_character"}
    assert refused.headers["cache-control"] == "no-store"
    assert len(await all_clicks()) == 1


async def test_a_bad_marketing_type_is_a_clear_error_and_no_click(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link()
    response = await client.get(f"/track/{link_id}", params={"type": "billboard"})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "type"
    assert error["code"] == "invalid_choice"
    assert "seo" in error["message"]
    assert "ppc" in error["message"]
    assert await all_clicks() == []


async def test_repeated_and_undecodable_parameters_are_named_together(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link()
    response = await client.get(f"/track/{link_id}?type=seo&type=ppc&s1=%FF&s2=" + "y" * 256)
    assert response.status_code == 422
    assert error_codes(response) == {"type": "repeated", "s1": "invalid_utf8", "s2": "too_long"}
    assert await all_clicks() == []


async def test_a_query_string_over_4_kib_is_refused_without_a_click(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link()
    response = await client.get(f"/track/{link_id}?pad={'a' * 4100}")
    assert response.status_code == 414
    assert await all_clicks() == []


async def test_head_checks_a_link_as_get_would_and_makes_no_click(
    client: httpx.AsyncClient,
) -> None:
    """Link checkers, mail scanners and prefetchers send HEAD: a click stands for a visitor."""
    link_id = await tracking_link()
    works = await client.head(f"/track/{link_id}", params={"type": "seo", "s1": "spring"})
    unknown = await client.head(f"/track/{uuid.uuid4()}")
    invalid = await client.head(f"/track/{link_id}", params={"s1": "x" * 256})
    too_long = await client.head(f"/track/{link_id}?pad={'a' * 4100}")
    assert (works.status_code, works.content) == (200, b"")
    assert "location" not in works.headers
    assert works.headers["cache-control"] == "no-store"
    assert [unknown.status_code, invalid.status_code, too_long.status_code] == [404, 422, 414]
    assert await all_clicks() == []
    # The same link, followed, still makes its click.
    assert (await client.get(f"/track/{link_id}")).status_code == 302
    assert len(await all_clicks()) == 1


async def test_every_tracking_response_is_uncached(client: httpx.AsyncClient) -> None:
    link_id = await tracking_link()
    redirect = await client.get(f"/track/{link_id}")
    not_allowed = await client.post(f"/track/{link_id}")
    assert redirect.headers["cache-control"] == "no-store"
    assert not_allowed.status_code == 405
    assert not_allowed.headers["cache-control"] == "no-store"


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(client: httpx.AsyncClient) -> None:
    link_id = await tracking_link()
    await client.get(f"/track/{link_id}", headers={"X-Forwarded-For": BRITISH_ADDRESS})
    [click] = await all_clicks()
    assert click["ip"] == "203.0.113.7"
    assert click["country"] is None


async def test_forwarded_for_counts_from_a_trusted_proxy_and_gives_the_country(db) -> None:
    link_id = await tracking_link()
    async with client_from("10.0.0.5", {"TRUSTED_PROXIES": "10.0.0.0/8"}) as proxied:
        response = await proxied.get(
            f"/track/{link_id}",
            headers={"X-Forwarded-For": f"198.51.100.1, {BRITISH_ADDRESS}, 10.0.0.9"},
        )
    assert response.status_code == 302
    [click] = await all_clicks()
    # The nearest address the trusted proxies did not write, not what the client claimed.
    assert click["ip"] == BRITISH_ADDRESS
    assert click["country"] == "GB"


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.10", "fd00::1"])
async def test_private_and_loopback_visitors_have_no_country(db, peer: str) -> None:
    link_id = await tracking_link()
    async with client_from(peer) as client:
        await client.get(f"/track/{link_id}")
    [click] = await all_clicks()
    assert click["ip"] == peer
    assert click["country"] is None


async def test_a_public_ipv6_visitor_gets_a_country(db) -> None:
    link_id = await tracking_link()
    async with client_from("2a00:1450:4001:81b::200e") as client:
        await client.get(f"/track/{link_id}", headers={"User-Agent": "curl/8.5.0"})
    [click] = await all_clicks()
    assert click["country"] == "DE"
    assert (click["browser_family"], click["os_family"], click["device_family"]) == (
        "curl",
        "Other",
        "Other",
    )


async def test_a_visit_without_a_user_agent_has_no_families(client: httpx.AsyncClient) -> None:
    link_id = await tracking_link()
    await client.get(f"/track/{link_id}", headers={"User-Agent": ""})
    [click] = await all_clicks()
    assert click["user_agent"] is None
    assert (click["browser_family"], click["os_family"], click["device_family"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "landing_url",
    [
        "javascript:alert(1)",
        "/relative/path",
        "//operator.example/no-scheme",
        "ftp://operator.example/file",
        "https:///no-host",
        "https://operator.example/with space",
        "https://operator.example\\@evil.example/",
        "https://operator.example:99999/",
        "https://operator.example/" + "a" * 2048,
        "",
        # No valid internationalised domain name, so no ASCII host for a redirect.
        "https://💰.example/bonus",
        "https://казино..example/",
        "https://казино.example:٨٠/",
        # 1,025 characters as written, 6,025 once percent-encoded.
        "https://operator.example/" + "ж" * 1000,
    ],
)
async def test_an_offer_needs_an_absolute_http_landing_url(db, landing_url: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        await create_offer("Welcome bonus", landing_url)
    assert [error.field for error in raised.value.errors] == ["landing_url"]


async def test_an_offer_stored_before_ascii_landing_urls_still_redirects_in_ascii(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link_to_stored_url("https://Казино.example/бонус/{click_id}?x=ё")
    response = await client.get(f"/track/{link_id}")
    assert response.status_code == 302
    [click] = await all_clicks()
    assert response.headers["location"] == (
        f"https://xn--80aodfsg.example/%D0%B1%D0%BE%D0%BD%D1%83%D1%81/{click['id']}?x=%D1%91"
    )


async def test_a_landing_url_that_cannot_make_a_redirect_leaves_no_click(
    client: httpx.AsyncClient,
) -> None:
    link_id = await tracking_link_to_stored_url("https://💰.example/bonus")
    response = await client.get(f"/track/{link_id}")
    assert response.status_code == 500
    assert await all_clicks() == []


async def test_a_tracking_link_needs_an_existing_offer_and_partner(db) -> None:
    with pytest.raises(InvalidInputError) as raised:
        await create_tracking_link(uuid.uuid4(), uuid.uuid4(), "\x00")
    assert {error.field: error.code for error in raised.value.errors} == {
        "creative": "control_character",
        "offer_id": "not_found",
        "partner_id": "not_found",
    }


def test_an_encoded_placeholder_is_replaced_too() -> None:
    click_id = uuid.uuid4()
    assert (
        landing_url_with_click_id("https://op.example/?c=%7bclick_id%7D", click_id, "click_id")
        == f"https://op.example/?c={click_id}"
    )
