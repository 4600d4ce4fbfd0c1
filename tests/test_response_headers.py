"""Every answer declares its type for good (`X-Content-Type-Options: nosniff`), errors from
the framework included, and the API browser loads nothing from elsewhere."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from models.store.tables import Offer
from tests.support import new_click, new_link

NOT_A_CLICK = "00000000-0000-4000-8000-000000000000"


async def unusable_tracking_link() -> str:
    # Only an offer stored by an earlier release can hold a URL no redirect can carry.
    offer = Offer(name="Old offer", landing_url="https://💰.example/")
    await offer.save()
    return str((await new_link(offer.id, "partner-42")).id)


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/convert/{click}?type=install", {}, None, 202),
        ("GET", "/convert/{click}?type=refund", {}, None, 422),
        ("GET", f"/convert/{NOT_A_CLICK}?type=install", {}, None, 404),
        ("GET", "/convert/{click}?pad=" + "a" * 5000, {}, None, 414),
        ("POST", "/convert/{click}", {"Content-Type": "application/json"}, b"{}", 415),
        ("POST", "/convert/{click}", {"Content-Type": "text/plain"}, b"a" * 5000, 413),
        ("GET", f"/track/{NOT_A_CLICK}", {}, None, 404),
        ("GET", "/track/{unusable}", {}, None, 500),
        ("GET", "/no/such/page", {}, None, 404),
        ("PUT", "/healthz", {}, None, 405),
        ("GET", "/healthz", {"X-Padding": "x" * 17 * 1024}, None, 431),
        ("POST", "/graphql", {"Content-Type": "application/json"}, b'{"query":"{a}"}', 401),
    ],
)
async def test_every_answer_carries_nosniff(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
) -> None:
    url = path.format(click=await new_click(), unusable=await unusable_tracking_link())
    response = await client.request(method, url, headers=headers, content=body)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_swagger_ui_is_served_by_the_app_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 4
    media_types = set()
    for asset in assets:
        # Same origin, no CDN: nothing for a third party to change, and no internet needed.
        assert not urlsplit(asset).netloc, asset
        response = await client.get(asset)
        assert response.status_code == 200, asset
        media_types.add(response.headers["content-type"].split(";")[0])
    assert media_types == {"text/javascript", "text/css", "image/png"}
