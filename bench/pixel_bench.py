"""Throughput of the two hot paths against the framework's ceiling (`make bench`).

For each engine and path (the pixel, `/convert`, and the tracking link, `/track`)
it serves (A) a bare Litestar app with a route of the same shape and the same
query parameters, and (B) the real app in production mode,
both under the same server (--server) and worker count, then drives them with
wrk, interleaved A/B/A/B, and prints the median req/s and p99 of each, the ratio
B/A, the errors, and whether the rows stored (conversions, or clicks) equal the
202s (or 302s) answered. With --invalid every fire is a 422 on an existing click
(amount=NaN): nothing may be stored but the log of rejected fires, within its cap.
Requires wrk (installed with apt-get when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_BENCH_URL = os.environ.get(
    "POSTGRES_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/conversions_bench"
)
RESULT = re.compile(
    r"RESULT requests=(\d+) accepted=(\d+) other=(\d+) errors=(\d+) p99_us=(\d+) duration_us=(\d+)"
)
CLICKS = 2000
# What each path answers when it has stored its row.
SUCCESS = {"convert": 202, "track": 302}
WRAPPED = re.compile(r"WRAPPED (\d+)")
# Signed fires per wrk run: more than the fastest side answers in a 10-second run.
SIGNED_PATHS_PER_RUN = 250_000


@dataclass(frozen=True)
class Run:
    requests: int
    accepted: int
    other: int
    errors: int
    p99_ms: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        print("installing wrk with apt-get ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


async def prepare_database(engine: str, workdir: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite'}"
    name = POSTGRES_BENCH_URL.rsplit("/", 1)[1]
    maintenance = await asyncpg.connect(POSTGRES_BENCH_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()
    return POSTGRES_BENCH_URL


def run_conversions(database_url: str, *arguments: str) -> str:
    return subprocess.run(
        [str(BIN / "conversions"), *arguments],
        env=os.environ | {"DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def create_clicks(
    database_url: str, clicks_file: Path, *, signed: bool, rules: int = 0
) -> tuple[str | None, str]:
    """Write the clicks' ids to `clicks_file`; return the offer's secret when `signed`
    (the clicks then come through a link to an offer that takes only signed deposits)
    and the id of a tracking link to visit; with `rules`, the link's partner has that
    many postback rules for every deposit (bench/seed_clicks.py)."""
    output = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "seed_clicks.py"),
            str(CLICKS),
            *(["--signed"] if signed else []),
            f"--rules={rules}",
        ],
        env=os.environ | {"DATABASE_URL": database_url},
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in output.splitlines() if line.strip()]
    secret = lines.pop(0).removeprefix("secret ")
    link_id = lines.pop(0).removeprefix("link ")
    for click_id in lines:
        uuid.UUID(click_id)
    clicks_file.write_text("\n".join(lines) + "\n")
    return (secret if signed else None), link_id


def write_signed_paths(paths_file: Path, clicks_file: Path, secret: str, tag: str) -> None:
    """Unique signed deposit fires, as an operator's backend sends them (the README's
    recipe), more than one run can send."""
    click_ids = clicks_file.read_text().split()
    lines = []
    for number in range(SIGNED_PATHS_PER_RUN):
        click_id = click_ids[number % len(click_ids)]
        transaction_id = f"{tag}-{number}"
        canonical = (
            f"{click_id}\namount=10.00&currency=eur&player_id=bench"
            f"&transaction_id={transaction_id}&type=deposit"
        )
        sig = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        lines.append(
            f"/convert/{click_id}?type=deposit&amount=10.00&currency=eur&player_id=bench"
            f"&transaction_id={transaction_id}&sig={sig}"
        )
    paths_file.write_text("\n".join(lines) + "\n")


def _cpu_seconds(pids: list[str]) -> float:
    """User and system CPU of the processes, from /proc; one that has ended counts 0."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        # Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
        fields = stat.rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def workers_cpu_seconds(server_pid: int) -> float:
    """The CPU of a server's worker processes (its children)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return _cpu_seconds(children)


def database_cpu_seconds() -> float:
    """The CPU of this machine's PostgreSQL processes: the share of a fire that the
    database's own work costs on the same cores (SQLite's runs inside the workers)."""
    postgres = [
        entry.name
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _command(entry) == "postgres"
    ]
    return _cpu_seconds(postgres)


def _command(process: Path) -> str:
    try:
        return (process / "comm").read_text().strip()
    except OSError:
        return ""


def serve(command: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/convert/{uuid.uuid4()}?type=install", timeout=1)
            return process
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not come up: {log.read_text()}")


@dataclass(frozen=True)
class Target:
    """What one bench sends: a path, and what it needs to build unique requests."""

    path: str  # "convert" or "track"
    clicks_file: Path
    link_id: str
    secret: str | None  # signed fires
    invalid: bool = False  # every fire answered 422


def drive(wrk: str, port: int, target: Target, tag: str, seconds: int, connections: int) -> Run:
    """One wrk run; signed fires are built beforehand, as Lua cannot sign."""
    clicks_file, secret = target.clicks_file, target.secret
    validity = "invalid" if target.invalid else "valid"
    script, script_arguments = "pixel.lua", [str(clicks_file), tag, validity]
    if target.path == "track":
        script, script_arguments = "track.lua", [target.link_id, tag]
    elif secret is not None:
        paths_file = clicks_file.with_name(f"paths-{tag}.txt")
        write_signed_paths(paths_file, clicks_file, secret, tag)
        script, script_arguments = "pixel_paths.lua", [str(paths_file)]
    output = subprocess.run(
        [
            wrk,
            "--threads",
            "2",
            "--connections",
            str(connections),
            "--duration",
            f"{seconds}s",
            "--script",
            str(ROOT / "bench" / script),
            f"http://127.0.0.1:{port}",
            "--",
            *script_arguments,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = RESULT.search(output)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    if (wrapped := WRAPPED.search(output)) and int(wrapped[1]):
        print(f"  note: {wrapped[1]} requests of {tag} repeated a signed fire", flush=True)
    requests, accepted, other, errors, p99_us, duration_us = map(int, match.groups())
    return Run(requests, accepted, other, errors, p99_us / 1000, duration_us / 1e6)


async def analyze(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute("ANALYZE")
        return
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


# The rows each path's answered requests must have left: conversions, or the clicks
# the tracking-link visits made (track.lua tags them with s2=bench).
STORED_ROWS = {
    "convert": "SELECT count(*) FROM conversion",
    "track": "SELECT count(*) FROM click WHERE s2 = 'bench'",
}


# The outbox's rows: with --rules, every stored conversion has one per rule.
QUEUED_DELIVERIES = "SELECT count(*) FROM postback_delivery"
# With --invalid: the rejected fires logged, at most the cap (FIRE_REJECTIONS_PER_*).
LOGGED_REJECTIONS = "SELECT count(*) FROM fire_rejection"
# Each worker logs at most this many per offer (or for fires without one) per clock
# hour: the settings' default. A run may straddle an hour: twice that, then.
REJECTIONS_PER_OFFER_PER_HOUR = 1000


async def count(database_url: str, query: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return int(connection.execute(query).fetchone()[0])
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


# Each server runs both sides with the same options, so the ratio measures the app.
SERVERS = {
    # uvicorn as `pip install uvicorn[standard]` sets it up: uvloop and httptools.
    "uvicorn": ["--loop", "uvloop", "--http", "httptools"],
    # uvicorn on its pure-Python fallbacks: the asyncio loop and h11.
    "uvicorn-h11": ["--loop", "asyncio", "--http", "h11"],
    "granian": [],
}


def server_commands(
    server: str, workers: int, ceiling_port: int, app_port: int
) -> tuple[list[str], list[str]]:
    if server == "granian":
        granian = [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--no-ws",
        ]
        return (
            [*granian, "--port", str(ceiling_port), "bench.ceiling_app:app"],
            [*granian, "--port", str(app_port), "--factory", "api.app:create_app"],
        )
    options = SERVERS[server]
    ceiling = [
        str(BIN / "uvicorn"),
        "bench.ceiling_app:app",
        "--port",
        str(ceiling_port),
        "--workers",
        str(workers),
        "--no-proxy-headers",
        "--no-server-header",
        "--no-access-log",
        "--host",
        "127.0.0.1",
        *options,
    ]
    # `conversions serve` is uvicorn with the same flags, in production mode.
    app = [
        str(BIN / "conversions"),
        "serve",
        "--port",
        str(app_port),
        "--workers",
        str(workers),
        *options,
    ]
    return ceiling, app


def bench_engine(engine: str, path: str, arguments: argparse.Namespace, wrk: str) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-{path}-"))
    database_url = asyncio.run(prepare_database(engine, workdir))
    run_conversions(database_url, "migrate")
    clicks_file = workdir / "clicks.txt"
    secret, link_id = create_clicks(
        database_url, clicks_file, signed=arguments.signed, rules=arguments.rules
    )
    invalid = arguments.invalid and path == "convert"
    target = Target(path, clicks_file, link_id, secret, invalid)
    success = 422 if invalid else SUCCESS[path]

    ceiling_port, app_port = free_port(), free_port()
    environment = os.environ | {"DATABASE_URL": database_url}
    if arguments.rules:
        # Deliveries are queued in each batch and not sent during the run (the
        # dispatcher's first look finds nothing due, then sleeps): the write is measured.
        environment |= {"POSTBACK_POLL_SECONDS": "3600"}
    ceiling_command, app_command = server_commands(
        arguments.server, arguments.workers, ceiling_port, app_port
    )
    ceiling = serve(ceiling_command, ceiling_port, environment, workdir / "ceiling.log")
    app = serve(app_command, app_port, environment, workdir / "app.log")
    results: dict[str, list[Run]] = {"ceiling": [], "app": []}
    # CPU microseconds per request in each side's workers, and in PostgreSQL, per run.
    cpu_per_request: dict[str, list[float]] = {"ceiling": [], "app": []}
    database_per_request: list[float] = []
    servers = {"ceiling": ceiling, "app": app}
    accepted_by_app = 0
    try:
        for name, port in (("ceiling", ceiling_port), ("app", app_port)):
            warm = drive(wrk, port, target, f"warm-{name}", arguments.warmup, arguments.connections)
            if name == "app":
                accepted_by_app += warm.accepted
        # A production table has planner statistics; one that grew from empty seconds
        # ago has none, and its plans would measure that instead of the app. Autovacuum
        # would analyze it within a minute, but not where it is turned off.
        asyncio.run(analyze(database_url))
        for round_number in range(arguments.runs):
            for name, port in (("ceiling", ceiling_port), ("app", app_port)):
                cpu_before = workers_cpu_seconds(servers[name].pid)
                database_before = database_cpu_seconds()
                run = drive(
                    wrk,
                    port,
                    target,
                    f"r{round_number}-{name}",
                    arguments.duration,
                    arguments.connections,
                )
                results[name].append(run)
                cpu = workers_cpu_seconds(servers[name].pid) - cpu_before
                cpu_per_request[name].append(cpu / run.requests * 1e6)
                if name == "app":
                    accepted_by_app += run.accepted
                    database_seconds = database_cpu_seconds() - database_before
                    database_per_request.append(database_seconds / run.requests * 1e6)
                print(
                    f"  {engine:8} /{path:7} {name:8} run {round_number + 1}: "
                    f"{run.per_second:8.0f} req/s  p99 {run.p99_ms:6.1f} ms  "
                    f"CPU {cpu_per_request[name][-1]:5.0f} µs/request  "
                    f"other answers {run.other}  socket errors {run.errors}",
                    flush=True,
                )
    finally:
        for process in (ceiling, app):
            process.terminate()
            process.wait(timeout=30)

    app_errors = sum(run.errors + run.other for run in results["app"])
    ceiling_rate = statistics.median(run.per_second for run in results["ceiling"])
    app_rate = statistics.median(run.per_second for run in results["app"])
    ceiling_p99 = statistics.median(run.p99_ms for run in results["ceiling"])
    app_p99 = statistics.median(run.p99_ms for run in results["app"])
    stored = asyncio.run(count(database_url, STORED_ROWS[path]))
    # wrk stops counting at its deadline while requests are still in flight; those
    # may commit unanswered. So every 202 must have its row (stored >= answered) and
    # at most one connection's request per wrk run may be stored unanswered.
    in_flight_at_deadlines = arguments.connections * (arguments.runs + 1)
    durable = accepted_by_app <= stored <= accepted_by_app + in_flight_at_deadlines
    database_share = ""
    if engine == "postgres":
        per_request = statistics.median(database_per_request)
        database_share = f" | PostgreSQL CPU per request {per_request:.0f} µs"
    outbox = ""
    if invalid:
        # The 422s stored no conversion; their log holds at most each worker's cap, for
        # the clicks' one offer (or, without a link, for fires without an offer).
        logged = asyncio.run(count(database_url, LOGGED_REJECTIONS))
        bound = 2 * arguments.workers * REJECTIONS_PER_OFFER_PER_HOUR
        durable = stored == 0 and logged <= bound
        outbox = f" | rejected fires logged {logged} (at most {bound})"
    if arguments.rules and path == "convert":
        queued = asyncio.run(count(database_url, QUEUED_DELIVERIES))
        durable = durable and queued == arguments.rules * stored
        outbox = f" | deliveries queued {queued} for {arguments.rules} rules"
    print(
        f"{engine} /{path}: ceiling {ceiling_rate:.0f} req/s p99 {ceiling_p99:.1f} ms | "
        f"app {app_rate:.0f} req/s p99 {app_p99:.1f} ms | ratio {app_rate / ceiling_rate:.2f} | "
        f"worker CPU per request: app {statistics.median(cpu_per_request['app']):.0f} µs, "
        f"ceiling {statistics.median(cpu_per_request['ceiling']):.0f} µs{database_share} | "
        f"errors {app_errors} | {success}s answered {accepted_by_app} rows stored {stored} "
        f"{outbox} {'OK' if durable else 'MISMATCH'}",
        flush=True,
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return durable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--server",
        choices=sorted(SERVERS),
        default="uvicorn",
        help="ASGI server for both sides (granian needs the [bench] extra)",
    )
    parser.add_argument(
        "--path",
        choices=["convert", "track", "both"],
        default="both",
        help="the pixel (/convert), the tracking link (/track), or both in turn",
    )
    parser.add_argument(
        "--signed",
        action="store_true",
        help="every fire a signed deposit on an offer that takes only signed deposits",
    )
    parser.add_argument(
        "--rules",
        type=int,
        default=0,
        help="postback rules for every deposit on the clicks' partner (the outbox's cost)",
    )
    parser.add_argument(
        "--invalid",
        action="store_true",
        help="every fire a 422 on an existing click (amount=NaN): the pixel's ratio on a "
        "stream of rejected fires, which are logged up to their cap",
    )
    arguments = parser.parse_args()
    if arguments.invalid and arguments.signed:
        parser.error("--invalid fires are unsigned")
    wrk = ensure_wrk()
    engines = ["postgres", "sqlite"] if arguments.engine == "both" else [arguments.engine]
    print(
        f"{os.cpu_count()} CPUs; {arguments.server}, {arguments.workers} workers each; "
        f"{arguments.connections} connections; {arguments.runs} runs of "
        f"{arguments.duration} s, interleaved{'; signed fires' if arguments.signed else ''}"
        f"{'; every fire invalid (422)' if arguments.invalid else ''}"
        f"{f'; {arguments.rules} postback rules' if arguments.rules else ''}",
        flush=True,
    )
    paths = ["convert", "track"] if arguments.path == "both" else [arguments.path]
    durable = [bench_engine(engine, path, arguments, wrk) for engine in engines for path in paths]
    return 0 if all(durable) else 1


if __name__ == "__main__":
    sys.exit(main())
