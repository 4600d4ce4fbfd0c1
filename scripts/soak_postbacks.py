"""The postbacks soak (`make soak-postbacks`): 2,000 conversions with postback rules for
two partners, while the partners' receiver is down for a minute and the app is
restarted once.

It starts a throwaway PostgreSQL cluster, migrates it, seeds two partners (each an
offer, a tracking link, clicks and a rule pointing at a receiver on loopback) and
serves the app with `conversions serve`. The receiver starts down. Half the fires go
to the first app process, which is then stopped with SIGTERM and replaced; the other
half go to the second. Besides the 2,000 conversions, some fires repeat an install
and some are test fires: neither may cause a delivery. The receiver comes up after
`--down` seconds, and the soak waits for every expected delivery.

It prints `expected delivered duplicates unexpected lost longest_delay` and exits
non-zero unless `lost=0` and `unexpected=0`. A duplicate (one delivery received twice)
is allowed by the at-least-once contract and counted, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from models.store.outbox_sql import stored_events
from models.store.tables import PostbackEvent
from tests.postback_receiver import Receiver
from tests.served_app import run_conversions, served_app
from tests.throwaway_postgres import initdb_is_installed, throwaway_cluster

# The receiver's URL template: every delivery names itself, its conversion and event.
TEMPLATE = "{receiver}/ok?d={{delivery_id}}&c={{conversion_id}}&e={{event}}"
# Partner A wants installs and first deposits, partner B every deposit.
RULES = {
    "a": [PostbackEvent.INSTALL, PostbackEvent.FIRST_DEPOSIT],
    "b": [PostbackEvent.DEPOSIT],
}
MAX_ATTEMPTS = 30
# Retries come sooner than in production, so recovery fits in a soak.
RETRY_BASE_SECONDS = "2"


async def seed(
    database_url: str, receiver: str, clicks_per_partner: int
) -> dict[str, list[uuid.UUID]]:
    """Two partners, each with an offer, a link, a rule and clicks; their click ids."""
    connection = await asyncpg.connect(database_url)
    now = datetime.now(UTC)
    clicks: dict[str, list[uuid.UUID]] = {}
    try:
        for name, events in RULES.items():
            partner, offer, link = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            await connection.execute(
                "INSERT INTO partner (id, name, created_at) VALUES ($1, $2, $3)", partner, name, now
            )
            await connection.execute(
                "INSERT INTO offer (id, name, landing_url, created_at, fire_policy)"
                " VALUES ($1, $2, 'https://casino.example/', $3, 'open')",
                offer,
                name,
                now,
            )
            await connection.execute(
                "INSERT INTO tracking_link (id, offer, partner, created_at)"
                " VALUES ($1, $2, $3, $4)",
                link,
                offer,
                partner,
                now,
            )
            await connection.execute(
                "INSERT INTO postback_rule (id, partner, events, url_template, enabled, created_at)"
                " VALUES ($1, $2, $3, $4, true, $5)",
                uuid.uuid4(),
                partner,
                stored_events(events),
                TEMPLATE.format(receiver=receiver),
                now,
            )
            clicks[name] = [uuid.uuid4() for _ in range(clicks_per_partner)]
            await connection.executemany(
                "INSERT INTO click (id, created_at, stage, tracking_link) VALUES ($1, $2, 0, $3)",
                [(click, now - timedelta(hours=1), link) for click in clicks[name]],
            )
    finally:
        await connection.close()
    return clicks


def plan_fires(clicks: dict[str, list[uuid.UUID]]) -> list[str]:
    """Each click's install and deposit (the 2,000 conversions); every tenth click also
    repeats its install and sends a test deposit, which must deliver nothing."""
    fires = []
    for click_ids in clicks.values():
        for number, click in enumerate(click_ids):
            fires.append(f"/convert/{click}?type=install")
            fires.append(
                f"/convert/{click}?type=deposit&amount=40&currency=usd&transaction_id=t-{click}"
            )
            if number % 10 == 0:
                fires.append(f"/convert/{click}?type=install")
                fires.append(
                    f"/convert/{click}?type=deposit&amount=1&currency=usd"
                    f"&transaction_id=test-{click}&test=true"
                )
    return fires


async def fire_all(base_url: str, fires: list[str], concurrency: int) -> int:
    """Fire each until it is answered 202, honouring Retry-After; how many gave up."""
    pending = iter(fires)
    gave_up = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal gave_up
        for path in pending:
            for _ in range(MAX_ATTEMPTS):
                try:
                    response = await client.get(path)
                except httpx.TransportError:
                    await asyncio.sleep(0.5)
                    continue
                if response.status_code == 202:
                    break
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            else:
                gave_up += 1

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return gave_up


async def expected_deliveries(database_url: str) -> dict[tuple[str, str], datetime]:
    """(conversion id, event) of every delivery the stored conversions call for, with
    when each conversion was received."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT conversion.id, conversion.type, conversion.is_first_deposit,"
            " conversion.received_at, partner.name FROM conversion"
            " JOIN click ON click.id = conversion.click"
            " JOIN tracking_link ON tracking_link.id = click.tracking_link"
            " JOIN partner ON partner.id = tracking_link.partner"
        )
    finally:
        await connection.close()
    expected = {}
    for row in rows:
        if row["name"] == "a":
            event = "first_deposit" if row["type"] == "deposit" else row["type"]
            if row["type"] == "deposit" and not row["is_first_deposit"]:
                continue
        else:
            if row["type"] != "deposit":
                continue
            event = "deposit"
        expected[(str(row["id"]), event)] = row["received_at"]
    return expected


async def soak(conversions: int, down_seconds: float, concurrency: int, workdir: Path) -> int:
    receiver = Receiver()
    # A port of its own, bound once the receiver comes up: until then, connection refused.
    probe = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
    receiver.port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()

    with throwaway_cluster() as cluster:
        run_conversions("migrate", environment={"DATABASE_URL": cluster.url})
        clicks = await seed(cluster.url, receiver.url(""), conversions // 4)
        fires = plan_fires(clicks)
        environment = {
            "DATABASE_URL": cluster.url,
            "POSTBACK_ALLOW_PRIVATE_NETWORKS": "true",
            "POSTBACK_RETRY_BASE_SECONDS": RETRY_BASE_SECONDS,
            "POSTBACK_MAX_ATTEMPTS": "10",
        }
        started = time.monotonic()
        half = len(fires) // 2
        with served_app(environment, workdir / "first.log") as app:
            gave_up = await fire_all(app.base_url, fires[:half], concurrency)
        print(f"first app stopped after {half} fires; restarting", flush=True)
        with served_app(environment, workdir / "second.log") as app:
            gave_up += await fire_all(app.base_url, fires[half:], concurrency)
            expected = await expected_deliveries(cluster.url)
            print(f"{len(fires)} fires, {len(expected)} deliveries expected", flush=True)
            await asyncio.sleep(max(0.0, down_seconds - (time.monotonic() - started)))
            server = await asyncio.start_server(receiver._serve, "127.0.0.1", receiver.port)
            print(f"receiver up after {time.monotonic() - started:.0f} s", flush=True)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                arrived = {(r.query["c"][0], r.query["e"][0]) for r in receiver.received}
                if expected.keys() <= arrived:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(2)  # a late duplicate would show now
            server.close()

    first_arrival: dict[tuple[str, str], float] = {}
    for request in receiver.received:
        key = (request.query["c"][0], request.query["e"][0])
        first_arrival[key] = min(first_arrival.get(key, request.at), request.at)
    per_delivery = Counter(r.headers["x-delivery-id"] for r in receiver.received)
    # Two deliveries for one conversion and event would be a duplicate too.
    unique = {r.headers["x-delivery-id"]: r for r in receiver.received}
    ids_per_event = Counter((r.query["c"][0], r.query["e"][0]) for r in unique.values())
    duplicates = sum(n - 1 for n in per_delivery.values()) + sum(
        n - 1 for n in ids_per_event.values()
    )
    unexpected = len(first_arrival.keys() - expected.keys())
    lost = len(expected.keys() - first_arrival.keys())
    delays = [
        first_arrival[key] - received_at.timestamp()
        for key, received_at in expected.items()
        if key in first_arrival
    ]
    print(
        f"expected={len(expected)} delivered={len(first_arrival.keys() & expected.keys())} "
        f"duplicates={duplicates} unexpected={unexpected} lost={lost} "
        f"longest_delay={max(delays, default=0):.1f}s fires_given_up={gave_up}"
    )
    return 0 if lost == 0 and unexpected == 0 and gave_up == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=2_000)
    parser.add_argument("--down", type=float, default=60.0, help="seconds the receiver is down")
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    if not initdb_is_installed():
        print("the soak needs PostgreSQL 15's initdb and pg_ctl", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="conversions-soak-pb-") as workdir:
        return asyncio.run(
            soak(arguments.conversions, arguments.down, arguments.concurrency, Path(workdir))
        )


if __name__ == "__main__":
    sys.exit(main())
