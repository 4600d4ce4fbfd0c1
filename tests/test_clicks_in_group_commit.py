"""Clicks ride the group commit, and visits read landing URLs from a per-worker cache."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from cachetools import TTLCache
from piccolo.engine.base import Engine

from models.clicks.service import NewClick, click_record
from models.conversions.outcomes import Recorded
from models.keys import Scope
from models.store.tables import Offer
from models.tracking import landing_urls
from models.tracking.offers import create_offer
from models.writes import ClickStored, store_click, store_report
from tests.graphql_client import graphql_as
from tests.support import new_link, stored_click, stored_conversions, validated_report


async def test_a_click_and_its_conversion_in_one_batch(db: Engine) -> None:
    """Queued together, they share a transaction: the click is written first."""
    click_id = uuid.uuid4()
    stored, recorded = await asyncio.gather(
        store_click(click_record(NewClick(player_id="p-1"), click_id)),
        store_report(validated_report(click_id)),
    )
    assert stored == ClickStored(click_id)
    assert isinstance(recorded, Recorded)
    assert (await stored_click(click_id))["stage"] == 1
    assert len(await stored_conversions(click_id)) == 1


async def test_every_302_names_a_committed_click(client: httpx.AsyncClient) -> None:
    offer = await create_offer("Offer", "https://operator.example/")
    link = await new_link(offer.id, "partner")
    visits = await asyncio.gather(*(client.get(f"/track/{link.id}?s1=v{n}") for n in range(30)))
    click_ids = {visit.headers["location"].rpartition("=")[2] for visit in visits}
    assert len(click_ids) == 30
    for click_id in click_ids:
        assert (await stored_click(uuid.UUID(click_id)))["tracking_link"] == link.id
    fires = await asyncio.gather(
        *(client.get(f"/convert/{click_id}?type=install") for click_id in click_ids)
    )
    assert {fire.status_code for fire in fires} == {202}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The worker's landing-URL cache on a clock the test moves."""
    clock = Clock()
    cache: TTLCache[uuid.UUID, str | None] = TTLCache(
        maxsize=landing_urls.MAX_LINKS, ttl=landing_urls.STALENESS_SECONDS, timer=clock
    )
    monkeypatch.setattr(landing_urls, "_cache", cache)
    return clock


async def test_a_landing_url_changed_elsewhere_is_served_within_the_bound(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    offer = await create_offer("Offer", "https://old.example/")
    link = await new_link(offer.id, "partner")
    assert (
        (await client.get(f"/track/{link.id}"))
        .headers["location"]
        .startswith("https://old.example/")
    )
    # Another worker changes it: this one may keep the old URL for the bound, no longer.
    await Offer.update({Offer.landing_url: "https://new.example/"}).where(Offer.id == offer.id)
    clock.now += landing_urls.STALENESS_SECONDS - 0.5
    assert (
        (await client.get(f"/track/{link.id}"))
        .headers["location"]
        .startswith("https://old.example/")
    )
    clock.now += 1
    assert (
        (await client.get(f"/track/{link.id}"))
        .headers["location"]
        .startswith("https://new.example/")
    )


async def test_a_change_made_through_this_worker_holds_at_once(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    offer = await create_offer("Offer", "https://old.example/")
    link = await new_link(offer.id, "partner")
    await client.get(f"/track/{link.id}")
    admin = await graphql_as(client, Scope.ADMIN)
    await admin.data(
        'mutation ($id: UUID!) { updateOffer(id: $id, input: {landingUrl: "https://new.example/"})'
        " { id } }",
        {"id": str(offer.id)},
    )
    assert (
        (await client.get(f"/track/{link.id}"))
        .headers["location"]
        .startswith("https://new.example/")
    )


async def test_an_unknown_link_is_remembered_as_unknown(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    unknown = uuid.uuid4()
    assert (await client.get(f"/track/{unknown}")).status_code == 404
    assert landing_urls.cached(unknown) == (True, None)
