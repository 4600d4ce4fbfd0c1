"""`GET /metrics` (SPEC part two, "Operations"), in process: off unless enabled, the
token, and what it counts. tests/test_metrics_served.py sums two served workers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from piccolo.engine.base import Engine
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from api.app import create_app
from api.metrics import MEDIA_TYPE
from api.settings import Settings
from models.clicks.service import NewClick, create_click
from models.keys import Scope
from models.partners.partners import create_partner
from models.postbacks.dispatcher import Dispatcher, DispatchPolicy
from models.postbacks.sending import SendPolicy
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, bearer, graphql_as, issue_key
from tests.live_client import key_payload, live_socket, served_here, subscribed_here
from tests.metrics_text import Sample, names, parse, value
from tests.postback_receiver import Receiver, receiver

TOKEN = "metrics-token-4f9d2c7a1e"
OPERATIONS_DOC = Path(__file__).parent.parent / "docs" / "operations.md"
REQUESTS = "conversions_http_requests_total"
FIRES = "conversions_pixel_fires_total"
VISITS = "conversions_tracking_visits_total"
CREATE_RULE = (
    "mutation ($input: CreatePostbackRuleInput!) { createPostbackRule(input: $input) {"
    " __typename } }"
)
POLICY = DispatchPolicy(
    send=SendPolicy(timeout_seconds=2.0, allow_private_networks=True),
    retry_base_seconds=30,
    max_attempts=10,
)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "METRICS_ENABLED": "true",
            "METRICS_TOKEN": TOKEN,
            # The partner's receiver is on loopback.
            "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
        }
    )


@pytest.fixture
async def partner_receiver() -> AsyncIterator[Receiver]:
    async with receiver() as found:
        yield found


async def scrape(client: httpx.AsyncClient) -> dict[Sample, float]:
    response = await client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def grew(
    before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str
) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_are_off_unless_enabled(db: Engine) -> None:
    app = create_app(Settings.from_env({"DATABASE_URL": os.environ["DATABASE_URL"]}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/metrics")).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
async def test_the_token_is_needed(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["errors"][0]["code"] == "unauthorized"
    assert TOKEN not in response.text
    assert (await client.get("/metrics", headers=bearer(TOKEN))).status_code == 200


async def test_requests_fires_and_visits_are_counted_by_route_and_outcome(
    client: httpx.AsyncClient,
) -> None:
    partner = await create_partner("net")
    offer = await create_offer("Casino", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    click = await create_click(NewClick())
    admin = await graphql_as(client)
    before = await scrape(client)

    for number in range(3):
        query = f"type=deposit&amount=10&currency=eur&transaction_id=t-{number}"
        assert (await client.get(f"/convert/{click}?{query}")).status_code == 202
    # POST goes through Litestar's router, not the front door: the same route's label.
    posted = await client.post(f"/convert/{click}", data={"type": "install"})
    assert posted.status_code == 202
    assert (await client.get(f"/convert/{click}?type=install")).status_code == 202
    assert (await client.get(f"/convert/{click}?type=refund")).status_code == 422
    assert (await client.get(f"/convert/{uuid.uuid4()}?type=install")).status_code == 404
    for _ in range(2):
        assert (await client.get(f"/track/{link.id}")).status_code == 302
    assert (await client.get(f"/track/{uuid.uuid4()}")).status_code == 404
    await admin.data("{ __typename }")
    assert (await client.get("/no/such/path")).status_code == 404

    after = await scrape(client)
    pixel, track = "/convert/{click_id}", "/track/{tracking_id}"
    assert grew(before, after, REQUESTS, route=pixel, status="202") == 5
    assert grew(before, after, REQUESTS, route=pixel, status="422") == 1
    assert grew(before, after, REQUESTS, route=pixel, status="404") == 1
    assert grew(before, after, REQUESTS, route=track, status="302") == 2
    assert grew(before, after, REQUESTS, route=track, status="404") == 1
    assert grew(before, after, REQUESTS, route="/graphql", status="200") == 1
    assert grew(before, after, REQUESTS, route="unrouted", status="404") == 1
    assert grew(before, after, FIRES, outcome="recorded") == 4
    assert grew(before, after, FIRES, outcome="duplicate") == 1
    assert grew(before, after, FIRES, outcome="invalid") == 1
    assert grew(before, after, FIRES, outcome="click_not_found") == 1
    assert grew(before, after, VISITS, outcome="redirect") == 2
    assert grew(before, after, VISITS, outcome="tracking_link_not_found") == 1
    # Every report that reached the store went through a group commit: the 6 fires
    # but the invalid one (a duplicate and an unknown click are found out there) and
    # the 2 visits' clicks, and the log entries of the 2 refused fires (422, 404).
    batches = grew(before, after, "conversions_group_commit_batch_size_count")
    assert batches >= 1
    assert grew(before, after, "conversions_group_commit_batch_size_sum") == 6 + 2 + 2
    assert grew(before, after, "conversions_group_commit_seconds_count") == batches
    assert grew(before, after, "conversions_group_commit_seconds_sum") > 0
    # Route templates, never raw paths: no id reaches a label.
    labels = {label for _, sample_labels in after for _, label in sample_labels}
    assert not any(str(some_id) in labels for some_id in (click, link.id))
    assert not any(label.startswith("/no/") for label in labels)


async def test_postback_deliveries_and_the_oldest_pending_one(
    client: httpx.AsyncClient, partner_receiver: Receiver
) -> None:
    partner = await create_partner("net")
    offer = await create_offer("Casino", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    admin: GraphQL = await graphql_as(client)
    for path, event in (("/ok", "INSTALL"), ("/fail", "REGISTRATION")):
        rule = {
            "partnerId": str(partner.id),
            "events": [event],
            "urlTemplate": partner_receiver.url(path),
        }
        created = await admin.data(CREATE_RULE, {"input": rule})
        assert created["createPostbackRule"]["__typename"] == "PostbackRuleSaved", created
    before = await scrape(client)
    assert value(before, "conversions_postback_oldest_pending_age_seconds") == 0
    assert value(before, "conversions_open_subscriptions") == 0

    click = await create_click(NewClick(tracking_link_id=link.id))
    for conversion_type in ("install", "registration"):
        fired = await client.get(f"/convert/{click}?type={conversion_type}")
        assert fired.status_code == 202
    waiting = await scrape(client)
    assert value(waiting, "conversions_postback_oldest_pending_age_seconds") > 0

    assert await Dispatcher(POLICY).run_once() == 2
    after = await scrape(client)
    assert grew(before, after, "conversions_postback_attempts_total", result="delivered") == 1
    # A 500 is retried later: still pending, and the oldest pending one.
    assert grew(before, after, "conversions_postback_attempts_total", result="pending") == 1
    assert value(after, "conversions_postback_oldest_pending_age_seconds") > 0


async def test_every_metric_the_spec_lists_is_there_and_documented(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics", headers=bearer(TOKEN))
    families = {family.name for family in text_string_to_metric_families(response.text)}
    documented = OPERATIONS_DOC.read_text()
    # The client's `_created` series of each metric, documented as such, aside.
    for family in {name for name in families if not name.endswith("_created")}:
        # Counters are named with their `_total` sample, as queries spell them.
        assert f"`{family}`" in documented or f"`{family}_total`" in documented, family
    assert {
        "conversions_http_requests",
        "conversions_pixel_fires",
        "conversions_tracking_visits",
        "conversions_group_commit_batch_size",
        "conversions_group_commit_seconds",
        "conversions_postback_attempts",
        "conversions_postback_oldest_pending_age_seconds",
        "conversions_open_subscriptions",
    } <= families
    assert "conversions_open_subscriptions" in names(parse(response.text))


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings.from_env({"METRICS_TOKEN": "too-short"})


def test_serve_sets_the_metrics_directory_before_the_client_is_imported() -> None:
    """The client picks its multiprocess mode when first imported: with one worker the
    app runs in `serve`'s own process, which must not have imported it yet."""
    check = "import sys, api.cli; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)


async def test_open_subscriptions_are_counted_while_open(db: Engine, settings: Settings) -> None:
    key = await issue_key(Scope.READ)
    async with served_here(create_app(settings)) as socket_url:
        base_url = socket_url.replace("ws://", "http://", 1)
        async with httpx.AsyncClient(base_url=base_url) as client:
            async with live_socket(socket_url, key_payload(key)) as socket:
                await socket.subscribe()
                await subscribed_here(1)
                assert value(await scrape(client), "conversions_open_subscriptions") == 1
            await subscribed_here(0)
            assert value(await scrape(client), "conversions_open_subscriptions") == 0


async def test_the_openapi_document_describes_metrics_as_it_answers(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    operation = document["paths"]["/metrics"]["get"]
    assert operation["security"] == [{"MetricsToken": []}]
    assert document["components"]["securitySchemes"]["MetricsToken"]["scheme"] == "bearer"
    described = {
        int(status): set(response["content"]) for status, response in operation["responses"].items()
    }
    assert described == {200: {MEDIA_TYPE}, 401: {"application/json"}}
    refused = await client.get("/metrics")
    assert refused.headers["content-type"].split(";")[0] in described[refused.status_code]
    scraped = await client.get("/metrics", headers=bearer(TOKEN))
    assert scraped.headers["content-type"].startswith(MEDIA_TYPE)
