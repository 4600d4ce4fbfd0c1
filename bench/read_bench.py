"""GraphQL reads at 1,000,000 conversions on PostgreSQL (`make bench-reads`).

Loads 10,000 clicks and 1,000,000 conversions with COPY, serves the app in
production mode, then times the dashboards' queries over HTTP, each filtered
page (by playerId, transactionId, clickId) and the unfiltered first page, and
prints p50/p99 of each beside the EXPLAIN of its SQL.

Then the report (issue 15): `--report-rows` more clicks (1,000,000 unless given)
through 20 offers' links over the last 30 days, as many conversions on them, and a
30-day `report` grouped by DAY, then by DAY and OFFER, timed over HTTP (p95, target
300 ms and 500 ms) beside the EXPLAIN ANALYZE of each of its statements.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx

DATABASE_URL = os.environ.get(
    "POSTGRES_READ_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/conversions_read_bench"
)
# piccolo_conf reads the URL when models are first imported (for the EXPLAINs).
os.environ["DATABASE_URL"] = DATABASE_URL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_bench import free_port, run_conversions, serve  # noqa: E402

if TYPE_CHECKING:
    from models.conversions.queries import ConversionFilter

CLICKS = 10_000
PLAYERS = 50_000
PAGE = """query($filter: ConversionFilter) {
  conversions(filter: $filter, first: 50) {
    edges { cursor node { id type occurredAt playerId transactionId amount currency } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def load(conversions: int) -> tuple[list[uuid.UUID], list[str], list[str]]:
    name = DATABASE_URL.rsplit("/", 1)[1]
    maintenance = await asyncpg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()
    run_conversions(DATABASE_URL, "migrate")

    random.seed(6)
    now = datetime.now(UTC)
    click_ids = [uuid.uuid4() for _ in range(CLICKS)]
    types = ("install", "registration")
    rows = []
    transaction_ids = []
    for number in range(conversions):
        # One install and one registration per click (the store allows no more); the
        # rest are deposits, as in a deposit-heavy operator's data.
        conversion_type = types[number // CLICKS] if number < 2 * CLICKS else "deposit"
        occurred_at = now - timedelta(seconds=random.randrange(90 * 86400))
        transaction_id = f"tx-{number}" if conversion_type == "deposit" else None
        if transaction_id:
            transaction_ids.append(transaction_id)
        rows.append(
            (
                uuid.uuid4(),
                click_ids[number % CLICKS],
                conversion_type,
                occurred_at,
                occurred_at,
                f"player-{number % PLAYERS}",
                transaction_id,
                "eur" if transaction_id else None,
                random.randrange(100, 100_000) if transaction_id else None,
                False,
                "pixel",
            )
        )
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        started = time.monotonic()
        await connection.copy_records_to_table(
            "click",
            records=[(click_id, now - timedelta(days=91), 0) for click_id in click_ids],
            columns=("id", "created_at", "stage"),
        )
        await connection.copy_records_to_table(
            "conversion",
            records=rows,
            columns=(
                "id",
                "click",
                "type",
                "occurred_at",
                "received_at",
                "player_id",
                "transaction_id",
                "currency",
                "amount_minor",
                "is_first_deposit",
                "source",
            ),
        )
        await connection.execute("ANALYZE")
        print(f"loaded {conversions:,} conversions with COPY in {time.monotonic() - started:.0f} s")
    finally:
        await connection.close()
    players = [f"player-{number}" for number in range(PLAYERS)]
    return click_ids, players, transaction_ids


REPORT = """query($input: ReportInput!) {
  report(input: $input) {
    rows { day offer { id name } metrics {
      clicks installs registrations deposits firstDeposits
      depositTotals { currency amount } registrationRate firstDepositRate } }
    totals { clicks deposits }
  }
}"""
REPORT_OFFERS = 20
# What each case asks and its p95 target in milliseconds.
REPORT_CASES = {"DAY": (["DAY"], 300.0), "DAY+OFFER": (["DAY", "OFFER"], 500.0)}


async def load_report_data(rows: int) -> None:
    """`rows` clicks through REPORT_OFFERS offers' links over the last 30 days and one
    conversion on each: installs, registrations and deposits (a third of those first)."""
    random.seed(15)
    now = datetime.now(UTC)
    offers = [
        (uuid.uuid4(), f"offer {n:02d}", "https://casino.example/", now)
        for n in range(REPORT_OFFERS)
    ]
    partners = [(uuid.uuid4(), f"partner {n:02d}", now) for n in range(REPORT_OFFERS)]
    links = [
        (uuid.uuid4(), offer[0], partner[0], now)
        for offer, partner in zip(offers, partners, strict=True)
    ]
    clicks = []
    conversions = []
    types = ("install", "registration", "deposit")
    for number in range(rows):
        click_id = uuid.uuid4()
        created_at = now - timedelta(seconds=random.randrange(30 * 86400))
        clicks.append((click_id, created_at, 0, links[number % len(links)][0], "DE"))
        conversion_type = types[number % 3]
        occurred_at = min(created_at + timedelta(minutes=random.randrange(600)), now)
        deposit = conversion_type == "deposit"
        conversions.append(
            (
                uuid.uuid4(),
                click_id,
                conversion_type,
                occurred_at,
                occurred_at,
                "eur" if deposit else None,
                random.randrange(100, 100_000) if deposit else None,
                deposit and number % 9 == 2,
                "pixel",
            )
        )
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        started = time.monotonic()
        await connection.copy_records_to_table(
            "offer", records=offers, columns=("id", "name", "landing_url", "created_at")
        )
        await connection.copy_records_to_table(
            "partner", records=partners, columns=("id", "name", "created_at")
        )
        await connection.copy_records_to_table(
            "tracking_link", records=links, columns=("id", "offer", "partner", "created_at")
        )
        await connection.copy_records_to_table(
            "click",
            records=clicks,
            columns=("id", "created_at", "stage", "tracking_link", "country"),
        )
        await connection.copy_records_to_table(
            "conversion",
            records=conversions,
            columns=(
                "id",
                "click",
                "type",
                "occurred_at",
                "received_at",
                "currency",
                "amount_minor",
                "is_first_deposit",
                "source",
            ),
        )
        await connection.execute("ANALYZE")
        print(
            f"loaded {rows:,} report clicks and conversions in {time.monotonic() - started:.0f} s"
        )
    finally:
        await connection.close()


def report_input(group_by: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "input": {
            "from": (now - timedelta(days=30)).isoformat(),
            "to": now.isoformat(),
            "groupBy": group_by,
        }
    }


async def explain_report(group_by: list[str]) -> str:
    """EXPLAIN ANALYZE of the report's two statements, as report_sql builds them."""
    from zoneinfo import ZoneInfo

    from models.store.report_sql import ReportScope, click_count_statement, conversion_sum_statement

    variables = report_input(group_by)["input"]
    scope = ReportScope(
        start=datetime.fromisoformat(variables["from"]),
        end=datetime.fromisoformat(variables["to"]),
        zone=ZoneInfo("UTC"),
        group_by=tuple(dimension.lower() for dimension in group_by),
        statuses=("approved", "pending"),
    )
    plans = []
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        for build in (click_count_statement, conversion_sum_statement):
            sql, arguments = build(scope, True, 10_001)
            for number in range(1, len(arguments) + 1):
                sql = sql.replace("{}", f"${number}", 1)
            plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *arguments)
            plans.append("\n".join("      " + row[0] for row in plan))
    finally:
        await connection.close()
    return "\n\n".join(plans)


async def time_reports(base_url: str, key: str, group_by: list[str], repeats: int) -> list[float]:
    timings = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(repeats):
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": REPORT, "variables": report_input(group_by)}
            )
            timings.append((time.perf_counter() - started) * 1000)
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"report failed: {response.status_code} {body}")
    return timings


def bench_reports(base_url: str, key: str, repeats: int) -> bool:
    """Each report case's p50 and p95 beside its plans; whether every p95 met its target."""
    met = True
    for name, (group_by, target) in REPORT_CASES.items():
        asyncio.run(time_reports(base_url, key, group_by, 3))  # warm-up
        timings = sorted(asyncio.run(time_reports(base_url, key, group_by, repeats)))
        p50 = statistics.median(timings)
        p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
        met = met and p95 <= target
        print(f"report {name:10} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (target {target:.0f} ms)")
        print(asyncio.run(explain_report(group_by)))
    return met


async def explain(conversion_filter: ConversionFilter) -> str:
    from models.conversions.queries import READS

    connection = await asyncpg.connect(DATABASE_URL)
    try:
        sql = str(READS.page_query(conversion_filter.conditions(), 50, None))
        plan = await connection.fetch(f"EXPLAIN {sql}")
    finally:
        await connection.close()
    return "\n".join("      " + row[0] for row in plan)


async def time_queries(base_url: str, key: str, variables: list[dict], repeats: int) -> list[float]:
    timings = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for number in range(repeats):
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": PAGE, "variables": variables[number % len(variables)]}
            )
            timings.append((time.perf_counter() - started) * 1000)
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"query failed: {response.status_code} {body}")
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--report-rows", type=int, default=1_000_000)
    parser.add_argument("--report-repeats", type=int, default=40)
    arguments = parser.parse_args()

    from models.conversions.queries import ConversionFilter

    click_ids, players, transaction_ids = asyncio.run(load(arguments.conversions))
    asyncio.run(load_report_data(arguments.report_rows))
    key = run_conversions(
        DATABASE_URL, "create-api-key", "--name", "read bench", "--scope", "read"
    ).splitlines()[-1]
    port = free_port()
    log = Path(f"/tmp/read-bench-{port}.log")
    app = serve(
        [
            str(Path(sys.executable).parent / "conversions"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        port,
        os.environ | {"DATABASE_URL": DATABASE_URL},
        log,
    )
    cases: dict[str, tuple[list[dict[str, Any]], ConversionFilter]] = {
        "playerId": (
            [{"filter": {"playerId": player}} for player in random.sample(players, 100)],
            ConversionFilter(player_id=players[0]),
        ),
        "transactionId": (
            [{"filter": {"transactionId": tx}} for tx in random.sample(transaction_ids, 100)],
            ConversionFilter(transaction_id=transaction_ids[0]),
        ),
        "clickId": (
            [{"filter": {"clickId": str(click)}} for click in random.sample(click_ids, 100)],
            ConversionFilter(click_id=click_ids[0]),
        ),
        "unfiltered": ([{}], ConversionFilter()),
    }
    base_url = f"http://127.0.0.1:{port}"
    worst_p99 = 0.0
    try:
        for name, (variables, conversion_filter) in cases.items():
            asyncio.run(time_queries(base_url, key, variables, 30))  # warm-up
            timings = sorted(asyncio.run(time_queries(base_url, key, variables, arguments.repeats)))
            p50 = statistics.median(timings)
            p99 = timings[int(len(timings) * 0.99) - 1]
            worst_p99 = max(worst_p99, p99) if name != "unfiltered" else worst_p99
            print(f"{name:14} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (first 50, newest first)")
            print(asyncio.run(explain(conversion_filter)))
        reports_met = bench_reports(base_url, key, arguments.report_repeats)
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"worst filtered p99: {worst_p99:.1f} ms (target <= 20 ms)")
    return 0 if worst_p99 <= 20 and reports_met else 1


if __name__ == "__main__":
    sys.exit(main())
