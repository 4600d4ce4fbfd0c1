"""`conversions import` of a large CSV file, on SQLite and PostgreSQL (`make bench-import`).

For each engine: a fresh database, N / 4 clicks, and a CSV of N rows (per click an
install, a registration and two deposits with transaction ids, the clicks' rows
interleaved as a backfill's would be); then the real command in a subprocess, its
stderr a pipe so that it prints a plain progress line at every tenth of the file.
At 10%, 50% and 100% of the file this prints the rows per second so far and the
process's resident and peak memory (from /proc), then the command's summary.

Single-process and CPU-bound: run it on a quiet machine, and read figures from a
shared one as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "POSTGRES_IMPORT_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/conversions_import_bench"
)
ROWS_PER_CLICK = 4
CHECKPOINTS = (10, 50, 100)
PROGRESS_LINE = re.compile(r": (?P<percent>\d+)% read, .* (?P<rate>[\d,]+) rows/s")
SEED_CHUNK = 500


async def seed(clicks: int, csv_path: Path) -> None:
    """In a process whose DATABASE_URL names the bench's database: the clicks, then the
    CSV naming them (rows of 1,000 clicks interleaved)."""
    from models.store.tables import Click

    created = datetime.now(UTC) - timedelta(hours=1)
    ids = [uuid.uuid4() for _ in range(clicks)]
    for start in range(0, clicks, SEED_CHUNK):
        await Click.insert(
            *(Click(id=id_, created_at=created) for id_ in ids[start : start + SEED_CHUNK])
        )
    with csv_path.open("w", newline="") as file:
        rows = csv.writer(file)
        rows.writerow(["click_id", "type", "player_id", "amount", "currency", "transaction_id"])
        for start in range(0, clicks, 1_000):
            group = ids[start : start + 1_000]
            for step in ("install", "registration"):
                rows.writerows([id_, step, f"player-{id_.hex[:8]}", "", "", ""] for id_ in group)
            for deposit in ("a", "b"):
                rows.writerows(
                    [id_, "deposit", "", "40.00", "EUR", f"order-{id_.hex[:12]}-{deposit}"]
                    for id_ in group
                )


def conversions(database_url: str, *arguments: str) -> None:
    subprocess.run(
        [str(BIN / "conversions"), *arguments],
        env=os.environ | {"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )


async def fresh_postgres() -> None:
    name = POSTGRES_URL.rsplit("/", 1)[1]
    maintenance = await asyncpg.connect(POSTGRES_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()


def memory_of(pid: int) -> str:
    """Resident and peak resident memory of a running process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    if not values:
        return "memory unknown (the process was exiting)"
    return f"RSS {int(values['VmRSS']) // 1024} MiB, peak {int(values['VmHWM']) // 1024} MiB"


def bench(engine: str, rows: int, directory: Path) -> None:
    if engine == "postgres":
        asyncio.run(fresh_postgres())
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{directory / 'import-bench.sqlite'}"
    conversions(url, "migrate")
    csv_path = directory / f"import-{engine}.csv"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, __file__, "--seed", str(rows // ROWS_PER_CLICK), str(csv_path)],
        env=os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    print(
        f"\n{engine}: {rows:,} rows over {rows // ROWS_PER_CLICK:,} clicks, "
        f"{csv_path.stat().st_size / 2**20:.0f} MiB of CSV, seeded in "
        f"{time.monotonic() - started:.0f} s"
    )
    with subprocess.Popen(
        [str(BIN / "conversions"), "import", str(csv_path)],
        # This checkout's code, whichever one the virtualenv was installed from.
        env=os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        assert process.stdout is not None
        for line in process.stderr:
            match = PROGRESS_LINE.search(line)
            if match and int(match["percent"]) in CHECKPOINTS:
                print(
                    f"  {match['percent']:>3}%: {match['rate']:>7} rows/s so far, "
                    + memory_of(process.pid)
                )
            elif not match:
                print("  " + line.rstrip())
        summary = process.stdout.read()
        # wait4 rather than wait: the command's own peak memory, whatever ran before it.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    print("  " + summary.rstrip().replace("\n", "\n  "))
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"  exit status {process.returncode}; peak RSS {usage.ru_maxrss // 1024} MiB; "
        f"CPU {cpu:.0f} s, {rows / cpu:,.0f} rows per CPU-second of the command "
        "(its ceiling on a core of its own; on SQLite the writes are part of it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="default: %(default)s")
    parser.add_argument(
        "--engine", choices=["sqlite", "postgres", "both"], default="both", help="default: both"
    )
    parser.add_argument("--seed", nargs=2, metavar=("CLICKS", "CSV"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.seed:
        clicks, csv_path = arguments.seed
        asyncio.run(seed(int(clicks), Path(csv_path)))
        return
    engines = ["sqlite", "postgres"] if arguments.engine == "both" else [arguments.engine]
    with tempfile.TemporaryDirectory(prefix="import-bench-") as directory:
        for engine in engines:
            bench(engine, arguments.rows, Path(directory))


if __name__ == "__main__":
    main()
