"""Faults, against a real `conversions serve` and a PostgreSQL cluster the test breaks on purpose.

The store stops, freezes, is locked by someone else, or the process is told to stop
under load. Whatever happens, the pixel never answers 202 for a conversion it did not
store, never keeps a caller waiting past its budget, and recovers by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import IN_CI, is_postgres_url
from tests.served_app import GRACEFUL_STOP_SECONDS, ServedApp, run_conversions, served_app
from tests.throwaway_postgres import ThrowawayCluster, initdb_is_installed, throwaway_cluster

pytestmark = pytest.mark.skipif(
    not is_postgres_url(os.environ["DATABASE_URL"]),
    reason="fault tests break a PostgreSQL cluster of their own; they run on the PostgreSQL half",
)

# The budget of one pixel write, pool acquire included (STORE_TIMEOUT_SECONDS).
STORE_TIMEOUT_SECONDS = 1.5
# What a loaded 2-core machine may add to the budget before the answer reaches the client.
SCHEDULING_SLACK_SECONDS = 1.0
STORE_ENVIRONMENT = {
    "STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT_SECONDS),
    "DATABASE_CONNECT_TIMEOUT_SECONDS": "1",
    "DATABASE_STATEMENT_TIMEOUT_SECONDS": "5",
    "DATABASE_POOL_MAX_SIZE": "10",
}
RECOVERY_SECONDS = 10


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    if not initdb_is_installed() and not IN_CI:
        pytest.skip("PostgreSQL's initdb is not installed here")
    with throwaway_cluster() as started:
        run_conversions("migrate", environment={"DATABASE_URL": started.url})
        yield started


@pytest.fixture
async def healthy_cluster(cluster: ThrowawayCluster) -> AsyncIterator[ThrowawayCluster]:
    """The cluster running and empty; running again afterwards whatever the test did to it."""
    connection = await asyncpg.connect(cluster.url, timeout=5)
    try:
        await connection.execute("TRUNCATE conversion, click CASCADE")
    finally:
        await connection.close()
    yield cluster
    await asyncio.to_thread(cluster.resume)
    if not (cluster.data_directory / "postmaster.pid").exists():
        await asyncio.to_thread(cluster.start)


@pytest.fixture
def served(healthy_cluster: ThrowawayCluster, tmp_path: Path) -> Iterator[ServedApp]:
    environment = STORE_ENVIRONMENT | {"DATABASE_URL": healthy_cluster.url}
    with served_app(environment, tmp_path / "serve.log") as app:
        yield app


async def new_clicks(cluster: ThrowawayCluster, count: int) -> list[uuid.UUID]:
    click_ids = [uuid.uuid4() for _ in range(count)]
    connection = await asyncpg.connect(cluster.url, timeout=5)
    try:
        await connection.executemany(
            "INSERT INTO click (id, created_at) VALUES ($1, now() - interval '1 hour')",
            [(click_id,) for click_id in click_ids],
        )
    finally:
        await connection.close()
    return click_ids


async def rows_per_click(cluster: ThrowawayCluster) -> dict[uuid.UUID, int]:
    connection = await asyncpg.connect(cluster.url, timeout=5)
    try:
        rows = await connection.fetch("SELECT click, count(*) AS n FROM conversion GROUP BY click")
    finally:
        await connection.close()
    return {row["click"]: row["n"] for row in rows}


async def fire(client: httpx.AsyncClient, click_id: uuid.UUID) -> tuple[httpx.Response, float]:
    """An install on the click, and how long the answer took."""
    started = time.monotonic()
    response = await client.get(f"/convert/{click_id}", params={"type": "install"})
    return response, time.monotonic() - started


async def fire_until_accepted(client: httpx.AsyncClient, click_id: uuid.UUID) -> float:
    """Retry until the pixel answers 202; how long recovery took."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        response, _ = await fire(client, click_id)
        if response.status_code == 202:
            return time.monotonic() - started
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.2)
    pytest.fail(f"the pixel did not recover within {RECOVERY_SECONDS} s of the store's return")


def assert_store_unavailable(response: httpx.Response, elapsed: float, budget: float) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["errors"][0]["code"] == "store_unavailable"
    assert elapsed < budget, f"503 took {elapsed:.2f} s, over the {budget} s budget"


async def test_a_stopped_store_answers_503_within_2_s_and_recovers_without_a_restart(
    healthy_cluster: ThrowawayCluster, served: ServedApp
) -> None:
    before, during, after = await new_clicks(healthy_cluster, 3)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
        accepted, _ = await fire(client, before)
        assert accepted.status_code == 202

        await asyncio.to_thread(healthy_cluster.stop)
        for _ in range(3):
            assert_store_unavailable(*await fire(client, during), budget=2.0)
        started = time.monotonic()
        assert (await client.get("/readyz")).status_code == 503
        assert time.monotonic() - started < 2.0 + SCHEDULING_SLACK_SECONDS

        await asyncio.to_thread(healthy_cluster.start)
        await fire_until_accepted(client, after)
        assert (await client.get("/readyz")).status_code == 200

    assert served.process.poll() is None, "the app must recover without a restart"
    assert await rows_per_click(healthy_cluster) == {before: 1, after: 1}


async def test_a_frozen_store_answers_503_within_the_budget_instead_of_queueing(
    healthy_cluster: ThrowawayCluster, served: ServedApp
) -> None:
    warm_up, *stalled = await new_clicks(healthy_cluster, 21)
    budget = STORE_TIMEOUT_SECONDS + SCHEDULING_SLACK_SECONDS
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        assert (await fire(client, warm_up))[0].status_code == 202

        # Twice the pool's size at once: the ones waiting for a connection share the budget.
        await asyncio.to_thread(healthy_cluster.freeze)
        try:
            started = time.monotonic()
            answers = await asyncio.gather(*(fire(client, click_id) for click_id in stalled))
            all_answered_after = time.monotonic() - started
            ready = await client.get("/readyz")
        finally:
            await asyncio.to_thread(healthy_cluster.resume)

        for response, elapsed in answers:
            assert_store_unavailable(response, elapsed, budget)
        assert all_answered_after < budget
        assert ready.status_code == 503
        await fire_until_accepted(client, stalled[0])

    assert await rows_per_click(healthy_cluster) == {warm_up: 1, stalled[0]: 1}


async def test_a_lock_held_elsewhere_answers_503_within_the_budget_and_stores_nothing(
    healthy_cluster: ThrowawayCluster, served: ServedApp
) -> None:
    click_ids = await new_clicks(healthy_cluster, 4)
    holder = await asyncpg.connect(healthy_cluster.url, timeout=5)
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            async with holder.transaction():
                await holder.execute("LOCK TABLE conversion IN ACCESS EXCLUSIVE MODE")
                answers = await asyncio.gather(*(fire(client, click_id) for click_id in click_ids))
            for response, elapsed in answers:
                assert_store_unavailable(
                    response, elapsed, budget=STORE_TIMEOUT_SECONDS + SCHEDULING_SLACK_SECONDS
                )
            # The abandoned writes were rolled back, not left to commit once the lock went.
            await asyncio.sleep(0.5)
            assert await rows_per_click(healthy_cluster) == {}

            retried = await asyncio.gather(*(fire(client, click_id) for click_id in click_ids))
            assert [response.status_code for response, _ in retried] == [202] * len(click_ids)
    finally:
        await holder.close()
    assert await rows_per_click(healthy_cluster) == dict.fromkeys(click_ids, 1)


async def _backends_waiting_on_a_lock(cluster: ThrowawayCluster, expected: int) -> None:
    connection = await asyncpg.connect(cluster.url, timeout=5)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            waiting = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting >= expected:
                return
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    pytest.fail(f"expected {expected} requests waiting on the lock, saw {waiting}")


async def _fire_recording(
    client: httpx.AsyncClient, click_id: uuid.UUID, limit: asyncio.Semaphore
) -> int | str:
    """The status, or the name of the transport error for a request the server refused."""
    async with limit:
        try:
            response, _ = await fire(client, click_id)
        except httpx.TransportError as error:
            return type(error).__name__
        return response.status_code


async def test_sigterm_under_load_finishes_requests_in_flight_and_every_202_has_its_row(
    healthy_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    in_flight_count = 8
    click_ids = await new_clicks(healthy_cluster, in_flight_count + 120)
    held, background = click_ids[:in_flight_count], click_ids[in_flight_count:]
    # A generous budget: the requests held by the lock must outlast the SIGTERM, not time out.
    environment = STORE_ENVIRONMENT | {
        "DATABASE_URL": healthy_cluster.url,
        "STORE_TIMEOUT_SECONDS": "10",
    }
    holder = await asyncpg.connect(healthy_cluster.url, timeout=5)
    with served_app(environment, tmp_path / "serve.log") as app:
        # A fresh connection per request: after SIGTERM a new request is refused at connect.
        no_keep_alive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=app.base_url, timeout=30, limits=no_keep_alive
        ) as client:
            lock = holder.transaction()
            await lock.start()
            await holder.execute("LOCK TABLE conversion IN ACCESS EXCLUSIVE MODE")
            held_fires = [asyncio.create_task(fire(client, click_id)) for click_id in held]
            # The worker's group commit sends them to the store together: one backend
            # waits on the lock, the other requests wait in the app for its batch.
            await _backends_waiting_on_a_lock(healthy_cluster, 1)
            await asyncio.sleep(0.3)
            limit = asyncio.Semaphore(16)
            background_fires = [
                asyncio.create_task(_fire_recording(client, click_id, limit))
                for click_id in background
            ]
            await asyncio.sleep(0.2)

            app.process.send_signal(signal.SIGTERM)
            stopping_since = time.monotonic()
            await asyncio.sleep(0.5)
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthz")
            await lock.rollback()

            held_answers = await asyncio.gather(*held_fires)
            background_answers = await asyncio.gather(*background_fires)
            exit_status = await asyncio.to_thread(app.process.wait, GRACEFUL_STOP_SECONDS)
            stopped_after = time.monotonic() - stopping_since
        log = app.log()
    await holder.close()

    assert [response.status_code for response, _ in held_answers] == [202] * in_flight_count
    assert exit_status in (0, -signal.SIGTERM)
    assert stopped_after < GRACEFUL_STOP_SECONDS
    assert "Application shutdown complete" in log
    unexpected = {answer for answer in background_answers if answer not in (202, 503)}
    # Refused at connect: the listening socket was closed, the request never reached the app.
    assert unexpected <= {"ConnectError"}, unexpected
    accepted = set(held) | {
        click_id
        for click_id, answer in zip(background, background_answers, strict=True)
        if answer == 202
    }
    assert await rows_per_click(healthy_cluster) == dict.fromkeys(accepted, 1)
