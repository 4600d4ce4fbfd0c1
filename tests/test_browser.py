"""A real browser: tracking link, landing page on another origin, every way to fire the pixel.

Debian's chromium, driven headless by Playwright for Python (never a browser download),
against `conversions serve` on a free localhost port and the test run's own database.
Outside CI the test is skipped when no browser is installed; in CI that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from piccolo.engine.base import Engine
from playwright.async_api import Page, Route, async_playwright

from models.store.tables import Conversion
from models.tracking.offers import create_offer
from tests.conftest import IN_CI
from tests.graphql_client import GraphQL, issue_key
from tests.support import new_link

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Flags that work on a machine without a screen, a sandbox or a network beyond localhost.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 30
FIRES_LAND_SECONDS = 15

# The operator's landing page. It lets the pixel see its full URL as the referrer
# (browsers send only the origin cross-origin by default) and fires the pixel every
# way the docs show: an iframe, an <img>, fetch, and the served script (sendBeacon).
LANDING_PAGE = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="unsafe-url">
  <title>Operator landing page</title>
</head>
<body>
  <h1>Welcome</h1>
  <script>
    const api = %(api)s;
    const clickId = new URLSearchParams(location.search).get("click_id");
    const pixel = (query) => `${api}/convert/${clickId}?${query}`;

    const iframe = document.createElement("iframe");
    iframe.src = pixel("type=registration&player_id=player-1");
    document.body.appendChild(iframe);

    const image = new Image(1, 1);
    image.src = pixel("type=deposit&amount=10.00&currency=eur&transaction_id=by-img");
    document.body.appendChild(image);

    window.fetchStatus = fetch(
      pixel("type=deposit&amount=20.00&currency=usd&transaction_id=by-fetch")
    ).then((response) => response.status);

    const script = document.createElement("script");
    script.src = `${api}/pixel.js`;
    Object.assign(script.dataset, {
      clickId: clickId,
      type: "deposit",
      amount: "30.50",
      currency: "gbp",
      transactionId: "by-script",
    });
    document.body.appendChild(script);
  </script>
</body>
</html>
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        missing = f"no browser at {CHROMIUM}: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(f"{missing} (CI needs it: .ci/run installs it)")
        pytest.skip(missing)
    return CHROMIUM


@pytest.fixture(scope="module")
def api_origin(store: Engine, chromium: str) -> Iterator[str]:
    """`conversions serve` on a free port, on the database this test run migrated.

    It asks for `chromium` only so that no server starts when the browser test is skipped.
    """
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]}
    environment.pop("TRUSTED_PROXIES", None)
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            cwd=Path(__file__).parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        origin = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(origin, server, log)
            yield origin
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_ready(origin: str, server: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if httpx.get(f"{origin}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log.seek(0)
    output = log.read().decode(errors="replace")
    pytest.fail(f"conversions serve did not become ready at {origin}:\n{output}")


@pytest.fixture(scope="module")
def landing_origin(api_origin: str) -> Iterator[str]:
    """The operator's site: a second localhost origin serving the landing page."""
    page = (LANDING_PAGE % {"api": json.dumps(api_origin)}).encode()

    class LandingPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if urlsplit(self.path).path == "/landing" else 404
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test's assertions say what went wrong."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), LandingPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
async def page(chromium: str) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            yield page
        finally:
            await browser.close()


async def _wait_for_conversions(click_id: uuid.UUID, expected: int) -> None:
    deadline = time.monotonic() + FIRES_LAND_SECONDS
    while await Conversion.count().where(Conversion.click == click_id) < expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)


CLICK_WITH_CONVERSIONS = """
query ($id: UUID!) {
  click(id: $id) {
    id
    userAgent
    stage
    conversions(first: 10) {
      totalCount
      edges { node { type transactionId amount currency source userAgent referrer playerId } }
    }
  }
}
"""


async def test_a_browser_follows_a_tracking_link_and_fires_every_way(
    db: Engine, api_origin: str, landing_origin: str, page: Page
) -> None:
    offer = await create_offer("Browser offer", f"{landing_origin}/landing?lang=en")
    link = await new_link(offer.id, "partner-browser")

    await page.goto(f"{api_origin}/track/{link.id}?type=social&s1=browser-test")
    landing_url: str = page.url
    location = urlsplit(landing_url)
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{landing_origin}/landing"
    query = parse_qs(location.query)
    assert query["lang"] == ["en"]
    click_id = uuid.UUID(query["click_id"][0])
    user_agent: str = await page.evaluate("navigator.userAgent")
    assert "HeadlessChrome" in user_agent
    # The CORS answer lets the operator's page read the status.
    assert await page.evaluate("window.fetchStatus") == 202

    await _wait_for_conversions(click_id, expected=4)
    async with httpx.AsyncClient(base_url=api_origin) as client:
        graphql = GraphQL(client, await issue_key())
        data = await graphql.data(CLICK_WITH_CONVERSIONS, {"id": str(click_id)})

    click = data["click"]
    assert click["userAgent"] == user_agent
    assert click["stage"] == "DEPOSIT"
    conversions = [edge["node"] for edge in click["conversions"]["edges"]]
    assert click["conversions"]["totalCount"] == 4
    by_way = {
        (conversion["type"], conversion["transactionId"]): conversion for conversion in conversions
    }
    # Each fire landed exactly once.
    assert sorted(by_way, key=str) == sorted(
        [
            ("REGISTRATION", None),
            ("DEPOSIT", "by-img"),
            ("DEPOSIT", "by-fetch"),
            ("DEPOSIT", "by-script"),
        ],
        key=str,
    )
    assert by_way["DEPOSIT", "by-img"]["amount"] == "10.00"
    assert by_way["DEPOSIT", "by-fetch"]["currency"] == "USD"
    assert by_way["DEPOSIT", "by-script"]["amount"] == "30.50"
    assert by_way["REGISTRATION", None]["playerId"] == "player-1"
    for conversion in conversions:
        assert conversion["source"] == "PIXEL"
        assert conversion["userAgent"] == user_agent
        assert conversion["referrer"] == landing_url


async def test_the_script_beacon_arrives_when_the_page_closes(
    db: Engine, api_origin: str, landing_origin: str, page: Page
) -> None:
    """sendBeacon's point: a fire on pagehide still arrives after the tab is gone."""
    offer = await create_offer("Closing offer", f"{landing_origin}/landing")
    link = await new_link(offer.id, "partner-browser")
    await page.goto(f"{api_origin}/track/{link.id}")
    click_id = uuid.UUID(parse_qs(urlsplit(page.url).query)["click_id"][0])
    await page.evaluate(
        """(clickId) => addEventListener("pagehide", () =>
            conversionPixel.fire(clickId, {type: "install", playerId: "leaving"}))""",
        str(click_id),
    )
    await page.close(run_before_unload=True)
    await _wait_for_conversions(click_id, expected=5)
    installs = await Conversion.select(Conversion.player_id).where(
        (Conversion.click == click_id) & (Conversion.type == "install")
    )
    assert installs == [{"player_id": "leaving"}]


async def test_swagger_ui_renders_from_the_apps_own_assets_alone(
    api_origin: str, page: Page
) -> None:
    """No CDN: the page works with nothing but the app reachable."""
    elsewhere: list[str] = []

    async def only_the_app(route: Route) -> None:
        if route.request.url.startswith(f"{api_origin}/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_app)
    await page.goto(f"{api_origin}/schema/swagger")
    title = page.locator(".swagger-ui .info .title")
    await title.wait_for(timeout=15_000)
    assert "Conversion API" in await title.inner_text()
    # Every operation of the description is listed, the pixel's included.
    assert await page.locator(".opblock-summary-path", has_text="/convert/{click_id}").count() > 0
    assert elsewhere == []
