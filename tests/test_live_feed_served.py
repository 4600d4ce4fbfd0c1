"""The live feed across worker processes: two `conversions serve` processes on one
store, subscribers on both, conversions fired through both. Every subscriber receives
every conversion once, and the time from the conversion's `receivedAt` (taken by the
worker before its batch commits: an upper bound of the time from commit to message)
to the message's arrival has a p95 within a second; the test prints it, beside the
time from the pixel's answer (given after the commit: a lower bound)."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path

import httpx

from models.keys import Scope
from tests.graphql_client import issue_key
from tests.live_client import LiveSocket, key_payload, live_socket
from tests.served_app import served_app
from tests.support import new_click

FIRES = 200
SUBSCRIBERS_PER_WORKER = 2
# Fires in flight at once, spread over both workers.
CONCURRENCY = 10
# What a dashboard's live feed shows.
FEED = """
subscription { conversionRecorded { id type transactionId amount currency receivedAt } }
"""


async def _probe_until_everyone_listens(
    workers: list[httpx.AsyncClient], sockets: list[LiveSocket]
) -> None:
    """Nothing tells a client that its subscription has started: probe deposits are
    fired through every worker until every subscriber has seen one."""
    probe_click = await new_click()
    for number in itertools.count():
        assert number < 100, "the subscriptions never started"
        for worker in workers:
            url = f"/convert/{probe_click}?type=deposit&transaction_id=probe-{number}-{id(worker)}"
            assert (await worker.get(url)).status_code == 202
        await asyncio.gather(*(socket.read_for(0.1) for socket in sockets))
        if all(socket.received.get("1") for socket in sockets):
            # The last round's probes may still be on their way: let them arrive.
            await asyncio.gather(*(socket.read_for(0.5) for socket in sockets))
            return


async def test_two_workers_send_every_conversion_to_every_subscriber_once_within_a_second(
    db: object, tmp_path: Path
) -> None:
    key = await issue_key(Scope.READ)
    click_id = await new_click()
    environment = {"DATABASE_URL": os.environ["DATABASE_URL"]}
    with (
        served_app(environment, tmp_path / "one.log") as one,
        served_app(environment, tmp_path / "two.log") as two,
    ):
        async with AsyncExitStack() as stack:
            workers = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=app.base_url))
                for app in (one, two)
            ]
            sockets = [
                await stack.enter_async_context(
                    live_socket(app.base_url.replace("http", "ws"), key_payload(key))
                )
                for app in (one, two)
                for _ in range(SUBSCRIBERS_PER_WORKER)
            ]
            for socket in sockets:
                await socket.subscribe(query=FEED)
            await _probe_until_everyone_listens(workers, sockets)
            for socket in sockets:
                socket.received.clear()
                socket.arrived_at.clear()

            answered_at: dict[str, float] = {}
            slots = asyncio.Semaphore(CONCURRENCY)

            async def fire(number: int) -> None:
                transaction_id = f"t{number}"
                async with slots:
                    response = await workers[number % 2].get(
                        f"/convert/{click_id}?type=deposit&amount=1&currency=usd"
                        f"&transaction_id={transaction_id}"
                    )
                    answered_at[transaction_id] = time.time()
                assert response.status_code == 202, response.text

            reading = [
                asyncio.create_task(socket.read_until("1", FIRES, seconds=60)) for socket in sockets
            ]
            started = time.monotonic()
            await asyncio.gather(*(fire(number) for number in range(FIRES)))
            firing = time.monotonic() - started
            await asyncio.gather(*reading)
            assert not any(await asyncio.gather(*(socket.read_for(0.3) for socket in sockets)))

    latencies, after_answers = [], []
    for socket in sockets:
        transaction_ids = [conversion["transactionId"] for conversion in socket.received["1"]]
        assert sorted(transaction_ids) == sorted(answered_at), "not every conversion, once"
        for conversion, arrived in zip(socket.received["1"], socket.arrived_at["1"], strict=True):
            received_at = datetime.fromisoformat(conversion["receivedAt"]).timestamp()
            latencies.append(arrived - received_at)
            after_answers.append(arrived - answered_at[conversion["transactionId"]])
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\nconversionRecorded, 2 workers, {len(sockets)} subscribers, {FIRES} fires: "
        f"receivedAt to message p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; answer (after the "
        f"commit) to message p50 {statistics.median(after_answers) * 1000:.0f} ms, p95 "
        f"{statistics.quantiles(after_answers, n=20)[-1] * 1000:.0f} ms; firing took "
        f"{firing:.2f} s"
    )
    assert p95 <= 1.0
