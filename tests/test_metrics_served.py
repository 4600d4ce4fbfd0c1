"""`/metrics` of `conversions serve --workers 2`: whichever worker answers a scrape, the
counts are those of both workers added up (SPEC part two, "Operations"), a killed
worker's counts included; `serve` makes the metrics directory and removes it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from piccolo.engine.base import Engine
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from models.clicks.service import NewClick, create_click
from models.partners.partners import create_partner
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import bearer, issue_key
from tests.metrics_text import Sample, parse, value
from tests.served_app import ServedApp, served_app

TOKEN = "metrics-token-4f9d2c7a1e"
REQUESTS = "conversions_http_requests_total"
# Requests of each kind sent at once per round, each on a connection of its own, so
# that both workers take some.
AT_ONCE = 12
ROUNDS = 10
# The workers add their counts to the shared files every second.
SETTLE_SECONDS = 10.0


def metrics_directory(served: ServedApp) -> Path:
    """The directory `serve` made, as its workers' environment names it."""
    pid = served.process.pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        environment = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        for entry in environment:
            if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(entry.split(b"=", 1)[1].decode())
    raise AssertionError("no worker has a metrics directory")


def fires_by_worker(directory: Path, scratch: Path) -> dict[int, float]:
    """Each worker's own count of recorded fires, read from its file alone."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        alone = scratch / path.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        samples = parse(generate_latest(registry).decode())
        counts[int(path.stem.split("_")[1])] = value(
            samples, "conversions_pixel_fires_total", outcome="recorded"
        )
    return counts


async def scrape(client: httpx.AsyncClient) -> dict[Sample, float]:
    response = await client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_two_workers_counts_add_up(db: Engine, tmp_path: Path) -> None:
    partner = await create_partner("net")
    offer = await create_offer("Casino", "https://casino.example/")
    link = await create_tracking_link(offer.id, partner.id)
    click = await create_click(NewClick())
    key = await issue_key()
    environment = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": TOKEN,
    }
    with served_app(environment, tmp_path / "serve.log", ["--workers", "2"]) as served:
        directory = metrics_directory(served)
        sent: Counter[str] = Counter()
        # No keep-alive: every request on a new connection, taken by either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=served.base_url, limits=limits) as client:

            async def fire() -> None:
                query = f"type=deposit&amount=10&currency=eur&transaction_id={uuid.uuid4()}"
                assert (await client.get(f"/convert/{click}?{query}")).status_code == 202
                sent["fires"] += 1

            async def visit() -> None:
                assert (await client.get(f"/track/{link.id}")).status_code == 302
                sent["visits"] += 1

            async def graphql() -> None:
                body = {"query": "{ __typename }"}
                answer = await client.post("/graphql", json=body, headers=bearer(key))
                assert answer.status_code == 200, answer.text
                sent["graphql"] += 1

            for _ in range(ROUNDS):
                kinds = (fire, visit, graphql)
                await asyncio.gather(*(kind() for kind in kinds for _ in range(AT_ONCE)))
                await asyncio.sleep(1.5)
                per_worker = fires_by_worker(directory, tmp_path)
                if len(per_worker) == 2 and all(per_worker.values()):
                    break
            else:
                raise AssertionError(f"one worker took every fire: {per_worker}")

            async def settled() -> dict[Sample, float]:
                deadline = time.monotonic() + SETTLE_SECONDS
                while True:
                    samples = await scrape(client)
                    counted = value(samples, REQUESTS, route="/convert/{click_id}", status="202")
                    if counted == sent["fires"] or time.monotonic() > deadline:
                        return samples
                    await asyncio.sleep(0.2)

            samples = await settled()
            # Several scrapes: each may be answered by either worker, and each sums both.
            for _ in range(4):
                assert (
                    value(samples, REQUESTS, route="/convert/{click_id}", status="202")
                    == (sent["fires"])
                )
                assert (
                    value(samples, REQUESTS, route="/track/{tracking_id}", status="302")
                    == (sent["visits"])
                )
                assert value(samples, REQUESTS, route="/graphql", status="200") == sent["graphql"]
                assert (
                    value(samples, "conversions_pixel_fires_total", outcome="recorded")
                    == (sent["fires"])
                )
                assert (
                    value(samples, "conversions_tracking_visits_total", outcome="redirect")
                    == (sent["visits"])
                )
                assert value(samples, "conversions_group_commit_batch_size_sum") == (
                    sent["fires"] + sent["visits"]
                )
                assert value(samples, "conversions_open_subscriptions") == 0
                samples = await scrape(client)
            assert sum(fires_by_worker(directory, tmp_path).values()) == sent["fires"]

            # A worker killed outright: what it counted still counts, its live gauge's
            # file goes at the next scrape, and uvicorn starts another worker.
            victim = max(fires_by_worker(directory, tmp_path))
            os.kill(victim, signal.SIGKILL)
            await asyncio.sleep(1.0)
            samples = await scrape(client)
            assert (
                value(samples, "conversions_pixel_fires_total", outcome="recorded")
                == (sent["fires"])
            )
            assert not (directory / f"gauge_livesum_{victim}.db").exists()
        assert served.terminate() == 0
    assert not directory.exists()
