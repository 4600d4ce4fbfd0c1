"""The soak (`make soak`): 10,000 conversions, then 5,000 tracking-link visits, through a
served app while PostgreSQL restarts.

It starts a throwaway PostgreSQL cluster (tests/throwaway_postgres.py), migrates it, serves
the app on it with `conversions serve` in production mode, and fires the events 64 at a
time from an httpx AsyncClient over loopback. Halfway through it crashes the database
(`pg_ctl stop -m immediate`), keeps it down for a moment and starts it again. Each answer
other than 202 is retried as an operator's server would: after the Retry-After it was given
(or a short pause after a transport error), a bounded number of times.

Then it counts rows: every event acknowledged with 202 must have exactly one row and no
row may exist twice. It prints `acknowledged=N stored=N lost=0 duplicated=0` and exits
non-zero otherwise.

The visits phase follows one tracking link the same way, crashing the database again
halfway: a visit is retried after 503 (which must carry Retry-After) or a transport
error, and every 302 must name a click that is stored, exactly once.

Every event is one a retry may repeat safely: installs and registrations are deduplicated
per click, deposits carry a transaction_id. A deposit without one has no identity, so no
client can retry it without risking a second row; the soak does not pretend otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from tests.served_app import run_conversions, served_app
from tests.throwaway_postgres import ThrowawayCluster, initdb_is_installed, throwaway_cluster

EVENTS_PER_CLICK = 4
MAX_ATTEMPTS = 30
# An operator's server honours Retry-After but would not wait for ever on one value.
MAX_RETRY_AFTER_SECONDS = 10.0
TRANSPORT_ERROR_PAUSE_SECONDS = 1.0
DATABASE_DOWN_SECONDS = 3.0
PROGRESS_EVERY_SECONDS = 2.0
# Below uvicorn's 5 s keep-alive timeout: with both at 5 s, a connection left idle while
# its worker honours a Retry-After is reused just as the server closes it (a ReadError).
CLIENT_KEEP_ALIVE_SECONDS = 2.0


@dataclass(frozen=True)
class Event:
    click_id: uuid.UUID
    type: str
    transaction_id: str | None = None
    amount: str | None = None

    @property
    def identity(self) -> tuple[uuid.UUID, str, str | None]:
        """What makes two rows the same event, as the deduplication indexes see it."""
        return (self.click_id, self.type, self.transaction_id)

    def parameters(self) -> dict[str, str]:
        parameters = {"type": self.type}
        if self.transaction_id is not None:
            parameters["transaction_id"] = self.transaction_id
        if self.amount is not None:
            parameters |= {"amount": self.amount, "currency": "eur"}
        return parameters


@dataclass
class Tally:
    total: int
    acknowledged: list[Event] = field(default_factory=list)
    rejected: list[tuple[Event, int]] = field(default_factory=list)
    gave_up: list[Event] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    halfway: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> int:
        return len(self.acknowledged) + len(self.rejected) + len(self.gave_up)

    def acknowledge(self, event: Event) -> None:
        self.acknowledged.append(event)
        self._one_more_finished()

    def reject(self, event: Event, status: int) -> None:
        self.rejected.append((event, status))
        self._one_more_finished()

    def give_up(self, event: Event) -> None:
        self.gave_up.append(event)
        self._one_more_finished()

    def _one_more_finished(self) -> None:
        if self.finished >= self.total // 2:
            self.halfway.set()


def plan_events(click_ids: list[uuid.UUID]) -> list[Event]:
    """Per click: an install and a registration without transaction ids, two deposits with.

    Shuffled, so that one click's events race each other as they would in production.
    """
    events = []
    for number, click_id in enumerate(click_ids):
        events += [
            Event(click_id, "install"),
            Event(click_id, "registration"),
            Event(click_id, "deposit", f"soak-{number}-first", amount=f"{number % 500 + 1}.50"),
            Event(click_id, "deposit", f"soak-{number}-second"),
        ]
    random.shuffle(events)
    return events


async def create_clicks(database_url: str, count: int) -> list[uuid.UUID]:
    click_ids = [uuid.uuid4() for _ in range(count)]
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.executemany(
            "INSERT INTO click (id, created_at) VALUES ($1, now() - interval '1 hour')",
            [(click_id,) for click_id in click_ids],
        )
    finally:
        await connection.close()
    return click_ids


def retry_after_seconds(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


async def deliver(client: httpx.AsyncClient, event: Event, tally: Tally) -> None:
    """Fire until 202, as an operator's server would; a definite refusal is not retried."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            tally.retries += 1
        try:
            response = await client.get(f"/convert/{event.click_id}", params=event.parameters())
        except httpx.TransportError as error:
            tally.answers[type(error).__name__] += 1
            await asyncio.sleep(TRANSPORT_ERROR_PAUSE_SECONDS)
            continue
        tally.answers[str(response.status_code)] += 1
        if response.status_code == 202:
            tally.acknowledge(event)
            return
        if response.status_code not in (429, 503):
            tally.reject(event, response.status_code)
            return
        # Jitter, so that the callers told to come back together do not all return at once.
        await asyncio.sleep(retry_after_seconds(response) + random.uniform(0, 0.5))
    tally.give_up(event)


async def worker(client: httpx.AsyncClient, pending: Iterator[Event], tally: Tally) -> None:
    # The workers share one iterator: each takes the next event when it is free.
    for event in pending:
        await deliver(client, event, tally)


async def restart_midway(cluster: ThrowawayCluster, tally: Tally, log: list[str]) -> None:
    await tally.halfway.wait()
    log.append(f"crashing PostgreSQL (immediate stop) after {tally.finished} events")
    await asyncio.to_thread(cluster.stop, "immediate")
    await asyncio.sleep(DATABASE_DOWN_SECONDS)
    await asyncio.to_thread(cluster.start)
    log.append(f"PostgreSQL is back (recovered from the crash) after {tally.finished} events")


async def show_progress(tally: Tally, started: float, log: list[str]) -> None:
    while True:
        for line in log:
            print(f"  ** {line}", flush=True)
        log.clear()
        answers = " ".join(f"{name}={count}" for name, count in sorted(tally.answers.items()))
        print(
            f"[{time.monotonic() - started:6.1f}s] {tally.finished}/{tally.total} done, "
            f"acknowledged={len(tally.acknowledged)} retries={tally.retries} answers: {answers}",
            flush=True,
        )
        if tally.finished >= tally.total:
            return
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)


async def count_rows(database_url: str) -> tuple[Counter[tuple[uuid.UUID, str, str | None]], int]:
    """Rows per event identity, and the clicks whose first-deposit flag is not on exactly one."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT click, type, transaction_id, count(*) AS n FROM conversion"
            " GROUP BY click, type, transaction_id"
        )
        bad_first_deposits = await connection.fetchval(
            # The conversion phase's clicks: the visits' clicks have no conversions.
            "SELECT count(*) FROM click WHERE tracking_link IS NULL AND (SELECT count(*)"
            " FROM conversion WHERE conversion.click = click.id AND is_first_deposit) <> 1"
        )
    finally:
        await connection.close()
    stored = Counter({(row["click"], row["type"], row["transaction_id"]): row["n"] for row in rows})
    return stored, bad_first_deposits


@dataclass
class Visits:
    """The visits phase: what each visit was answered, and the clicks the 302s named."""

    total: int
    redirected: list[uuid.UUID] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    gave_up: int = 0
    halfway: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> int:
        return len(self.redirected) + self.gave_up


async def visit(client: httpx.AsyncClient, link_id: uuid.UUID, number: int, visits: Visits) -> None:
    """Follow the link until a 302, as a browser reloading after an error page would."""
    for _ in range(MAX_ATTEMPTS):
        try:
            response = await client.get(f"/track/{link_id}", params={"s1": f"visit-{number}"})
        except httpx.TransportError as error:
            visits.answers[type(error).__name__] += 1
            await asyncio.sleep(TRANSPORT_ERROR_PAUSE_SECONDS)
            continue
        visits.answers[str(response.status_code)] += 1
        if response.status_code == 302:
            visits.redirected.append(uuid.UUID(response.headers["location"].rpartition("=")[2]))
            if visits.finished >= visits.total // 2:
                visits.halfway.set()
            return
        if response.status_code == 503 and "retry-after" not in response.headers:
            visits.unavailable_without_retry_after += 1
        await asyncio.sleep(retry_after_seconds(response) + random.uniform(0, 0.5))
    visits.gave_up += 1


async def create_link(database_url: str) -> uuid.UUID:
    offer_id, partner_id, link_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.execute(
            "INSERT INTO offer (id, name, landing_url, created_at) "
            "VALUES ($1, 'soak', 'https://operator.example/welcome', now())",
            offer_id,
        )
        await connection.execute(
            "INSERT INTO partner (id, name, created_at) VALUES ($1, 'soak', now())", partner_id
        )
        await connection.execute(
            "INSERT INTO tracking_link (id, offer, partner, created_at) VALUES ($1, $2, $3, now())",
            link_id,
            offer_id,
            partner_id,
        )
    finally:
        await connection.close()
    return link_id


async def soak_visits(
    cluster: ThrowawayCluster, client: httpx.AsyncClient, total: int, concurrency: int
) -> bool:
    link_id = await create_link(cluster.url)
    visits = Visits(total=total)
    numbers = iter(range(total))

    async def visitor() -> None:
        for number in numbers:
            await visit(client, link_id, number, visits)

    async def crash_midway() -> None:
        await visits.halfway.wait()
        print(f"  ** crashing PostgreSQL after {visits.finished} visits", flush=True)
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(DATABASE_DOWN_SECONDS)
        await asyncio.to_thread(cluster.start)
        print(f"  ** PostgreSQL is back after {visits.finished} visits", flush=True)

    started = time.monotonic()
    crash = asyncio.create_task(crash_midway())
    await asyncio.gather(*(visitor() for _ in range(concurrency)))
    await crash
    connection = await asyncpg.connect(cluster.url, timeout=10)
    try:
        stored = await connection.fetchval(
            "SELECT count(*) FROM click WHERE id = ANY($1::uuid[])", visits.redirected
        )
    finally:
        await connection.close()
    answers = " ".join(f"{name}={count}" for name, count in sorted(visits.answers.items()))
    print(
        f"\n{total} visits in {time.monotonic() - started:.1f} s; answers: {answers}\n"
        f"redirected={len(visits.redirected)} clicks_stored={stored} gave_up={visits.gave_up} "
        f"503s_without_retry_after={visits.unavailable_without_retry_after}"
    )
    unexpected = set(visits.answers) - {"302", "503", "ConnectError", "ReadError"}
    return (
        len(set(visits.redirected)) == len(visits.redirected) == total
        and stored == total
        and visits.gave_up == 0
        and visits.unavailable_without_retry_after == 0
        and not unexpected
    )


async def soak(
    cluster: ThrowawayCluster, events_total: int, visits_total: int, concurrency: int, workdir: Path
) -> int:
    click_ids = await create_clicks(cluster.url, events_total // EVENTS_PER_CLICK)
    events = plan_events(click_ids)
    pending = iter(events)
    tally = Tally(total=len(events))
    log: list[str] = []

    with served_app({"DATABASE_URL": cluster.url}, workdir / "serve.log") as app:
        print(f"serving on {app.base_url}, PostgreSQL on port {cluster.port}", flush=True)
        limits = httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS,
        )
        async with httpx.AsyncClient(base_url=app.base_url, timeout=30, limits=limits) as client:
            started = time.monotonic()
            progress = asyncio.create_task(show_progress(tally, started, log))
            restart = asyncio.create_task(restart_midway(cluster, tally, log))
            await asyncio.gather(*(worker(client, pending, tally) for _ in range(concurrency)))
            await restart
            await progress
            elapsed = time.monotonic() - started
            visits_healthy = await soak_visits(cluster, client, visits_total, concurrency)

    stored, bad_first_deposits = await count_rows(cluster.url)
    acknowledged = {event.identity for event in tally.acknowledged}
    lost = sum(1 for identity in acknowledged if stored[identity] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    stored_total = sum(stored.values())
    print(
        f"\n{len(events)} events in {elapsed:.1f} s, {tally.retries} retries; "
        f"rejected={len(tally.rejected)} gave_up={len(tally.gave_up)} "
        f"clicks_without_exactly_one_first_deposit={bad_first_deposits}"
    )
    for event, status in tally.rejected[:10]:
        print(f"  rejected with {status}: {event}")
    print(
        f"acknowledged={len(acknowledged)} stored={stored_total} "
        f"lost={lost} duplicated={duplicated}"
    )
    healthy = (
        len(acknowledged) == len(events)
        and stored_total == len(acknowledged)
        and lost == 0
        and duplicated == 0
        and bad_first_deposits == 0
    )
    return 0 if healthy and visits_healthy else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--visits", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=64)
    arguments = parser.parse_args()
    if not initdb_is_installed():
        print("the soak needs PostgreSQL 15's initdb and pg_ctl", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="conversions-soak-") as workdir,
        throwaway_cluster() as cluster,
    ):
        run_conversions("migrate", environment={"DATABASE_URL": cluster.url})
        return asyncio.run(
            soak(cluster, arguments.events, arguments.visits, arguments.concurrency, Path(workdir))
        )


if __name__ == "__main__":
    sys.exit(main())
