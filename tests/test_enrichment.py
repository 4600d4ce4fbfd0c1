"""Enrichment of browser fires (families, country) and the served pixel script."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from models.clicks.service import NewClick, click_errors
from pixel.client_ip import Caller, TrustedProxies
from pixel.enrichment import (
    UserAgentFamilies,
    country_of,
    request_metadata,
    user_agent_families,
)
from tests.support import new_click, stored_conversions

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
# MaxMind's own test address, in the GeoLite2 data as Great Britain.
BRITISH_ADDRESS = "81.2.69.160"


@pytest.mark.parametrize(
    ("address", "country"),
    [
        (BRITISH_ADDRESS, "GB"),
        ("8.8.8.8", "US"),
        ("2a00:1450:4001:81b::200e", "DE"),
        ("127.0.0.1", None),
        ("::1", None),
        ("10.0.0.1", None),
        ("172.16.5.4", None),
        ("192.168.1.1", None),
        ("fd12:3456::1", None),
        ("fe80::1", None),
        ("169.254.10.10", None),
        ("203.0.113.7", None),
        ("not an address", None),
        (None, None),
    ],
)
def test_country_of(address: str | None, country: str | None) -> None:
    assert country_of(address) == country


def test_user_agent_families() -> None:
    assert user_agent_families(ANDROID_CHROME) == UserAgentFamilies(
        browser="Chrome Mobile", os="Android", device="Pixel 8"
    )
    assert user_agent_families("") == UserAgentFamilies()
    assert user_agent_families("something unheard of") == UserAgentFamilies(
        browser="Other", os="Other", device="Other"
    )


async def test_a_pixel_fire_stores_the_families(client: httpx.AsyncClient) -> None:
    click_id = await new_click()
    response = await client.get(
        f"/convert/{click_id}?type=install", headers={"User-Agent": ANDROID_CHROME}
    )
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert (
        conversion["browser_family"],
        conversion["os_family"],
        conversion["device_family"],
    ) == ("Chrome Mobile", "Android", "Pixel 8")
    assert conversion["country"] is None


async def test_a_pixel_fire_through_a_trusted_proxy_stores_the_clients_country(db) -> None:
    app = create_app(Settings.from_env({"TRUSTED_PROXIES": "127.0.0.1"}))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as proxied:
        click_id = await new_click()
        response = await proxied.post(
            f"/convert/{click_id}",
            data={"type": "registration"},
            headers={"X-Forwarded-For": BRITISH_ADDRESS},
        )
    assert response.status_code == 202
    [conversion] = await stored_conversions(click_id)
    assert conversion["ip"] == BRITISH_ADDRESS
    assert conversion["country"] == "GB"


async def test_a_pixel_fire_from_an_untrusted_peer_ignores_forwarded_for(db) -> None:
    app = create_app(Settings.from_env({}))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as direct:
        click_id = await new_click()
        await direct.get(
            f"/convert/{click_id}?type=install", headers={"X-Forwarded-For": BRITISH_ADDRESS}
        )
    [conversion] = await stored_conversions(click_id)
    assert conversion["ip"] == "127.0.0.1"
    assert conversion["country"] is None


async def test_a_server_to_server_fire_from_a_public_address_gets_its_country(db) -> None:
    app = create_app(Settings.from_env({}))
    transport = httpx.ASGITransport(app=app, client=("8.8.8.8", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote:
        click_id = await new_click()
        await remote.get(f"/convert/{click_id}?type=install")
    [conversion] = await stored_conversions(click_id)
    assert conversion["country"] == "US"


async def test_pixel_js_is_served_as_cacheable_javascript(client: httpx.AsyncClient) -> None:
    response = await client.get("/pixel.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "navigator.sendBeacon" in response.text
    assert "keepalive: true" in response.text

    revalidated = await client.get("/pixel.js", headers={"If-None-Match": response.headers["etag"]})
    assert revalidated.status_code == 304
    assert revalidated.content == b""


def test_a_missing_country_database_stops_the_app_at_start_up(tmp_path: Path) -> None:
    """Better no service than one that silently records no countries."""
    missing = tmp_path / "missing.dat.gz"
    served = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "0"],
        env={**os.environ, "GEOIP_DATA_FILE": str(missing)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode != 0
    assert str(missing) in served.stdout + served.stderr


@settings(max_examples=300, deadline=None)
@given(
    peer=st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=60)),
    forwarded_for=st.one_of(st.none(), st.text(max_size=200)),
    user_agent=st.one_of(st.none(), st.binary(max_size=3000).map(lambda b: b.decode("latin-1"))),
    referrer=st.one_of(st.none(), st.binary(max_size=3000).map(lambda b: b.decode("latin-1"))),
)
def test_what_a_request_tells_is_clean_by_construction(
    peer: str | None, forwarded_for: str | None, user_agent: str | None, referrer: str | None
) -> None:
    # A visit's click stores this without checking it again (models/tracking/visits.py).
    caller = Caller(peer, forwarded_for, user_agent, referrer)
    proxies = TrustedProxies((ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))
    for trusted in (TrustedProxies(), proxies):
        metadata = request_metadata(caller, trusted)
        assert click_errors(NewClick(**metadata.columns())) == []
