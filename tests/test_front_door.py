"""The front door (api/front_door.py): the hot paths' raw GET routes answer exactly as
the Litestar handlers on the same paths do, which OpenAPI describes and which take
every request the door leaves to the framework (here: the same path with a trailing
slash, which Litestar's router accepts and the door does not)."""

from __future__ import annotations

import logging
import re
import uuid

import httpx
import pytest

from models.store.tables import Click, Conversion, FirePolicy, Offer
from models.tracking.offers import create_offer, rotate_fire_secret
from tests.support import new_click, new_link

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], str]:
    """An answer without what differs by design: the date, and fresh ids (the request's
    own id among them)."""
    headers = sorted(
        (name, "<id>" if name == "x-request-id" else UUID_PATTERN.sub("<id>", value))
        for name, value in response.headers.items()
        if name != "date"
    )
    return response.status_code, headers, UUID_PATTERN.sub("<id>", response.text)


async def both_ways(client: httpx.AsyncClient, path: str, query: str, **headers: str) -> None:
    """The same GET through the door and through Litestar answers the same."""
    through_door = await client.get(f"{path}?{query}", headers=headers)
    through_litestar = await client.get(f"{path}/?{query}", headers=headers)
    assert comparable(through_door) == comparable(through_litestar)


@pytest.mark.parametrize(
    "query",
    [
        "type=install",
        "type=deposit&amount=40&currency=usd&transaction_id=t-1",
        "type=deposit&amount=40&currency=usd&transaction_id=t-1&test=true",
        "type=refund&amount=x&currency=usd",
        "type=install&type=install",
        "type=%ff",
        "pad=" + "a" * 5000,
    ],
)
async def test_pixel_fires_answer_alike(client: httpx.AsyncClient, query: str) -> None:
    click = await new_click()
    await both_ways(client, f"/convert/{click}", query, **{"User-Agent": "Mozilla/5.0"})


async def test_pixel_refusals_answer_alike(client: httpx.AsyncClient) -> None:
    offer = await create_offer("Signed", "https://operator.example/", FirePolicy.SIGNED)
    await rotate_fire_secret(offer.id)
    signed_click = await new_click(tracking_link_id=(await new_link(offer.id)).id)
    await both_ways(client, f"/convert/{signed_click}", "type=install")
    await both_ways(client, f"/convert/{signed_click}", "type=install&sig=00")
    await both_ways(client, f"/convert/{UNKNOWN}", "type=install")
    await both_ways(client, "/convert/not-a-uuid", "type=install")


async def test_both_ways_store_alike(client: httpx.AsyncClient) -> None:
    click = await new_click()
    await client.get(f"/convert/{click}?type=install")
    await client.get(f"/convert/{click}/?type=registration")
    stored = await Conversion.select(Conversion.type).where(Conversion.click == click)
    assert sorted(row["type"] for row in stored) == ["install", "registration"]


@pytest.mark.parametrize("query", ["", "s1=a&type=ppc", "type=nope", "s1=a&s1=b", "s2=%ff"])
async def test_visits_answer_alike(client: httpx.AsyncClient, query: str) -> None:
    offer = await create_offer("Welcome", "https://operator.example/welcome?x=1")
    link = await new_link(offer.id)
    await both_ways(client, f"/track/{link.id}", query)
    await both_ways(client, f"/track/{UNKNOWN}", query)
    await both_ways(client, "/track/not-a-uuid", query)


async def test_a_visit_through_the_door_stores_its_click(client: httpx.AsyncClient) -> None:
    offer = await create_offer("Welcome", "https://operator.example/welcome")
    link = await new_link(offer.id)
    visit = await client.get(f"/track/{link.id}?s1=a")
    assert visit.status_code == 302
    click_id = uuid.UUID(visit.headers["location"].rpartition("=")[2])
    assert await Click.exists().where((Click.id == click_id) & (Click.s1 == "a"))


async def test_an_unexpected_error_is_a_logged_500_both_ways(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Only an offer stored by an earlier release can hold a URL no redirect can carry.
    offer = Offer(name="Old offer", landing_url="https://💰.example/")
    await offer.save()
    link = await new_link(offer.id)
    with caplog.at_level(logging.ERROR):
        await both_ways(client, f"/track/{link.id}", "")
    logged = [record for record in caplog.records if "unhandled error on GET" in record.message]
    assert len(logged) == 2
    assert all(record.exc_info for record in logged)
    response = await client.get(f"/track/{link.id}")
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "internal_error"
    assert "Traceback" not in response.text
