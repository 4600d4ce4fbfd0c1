"""Does the app's memory settle under load? (`make bench-memory`)

Serves the app on PostgreSQL in production mode (2 workers), drives it with wrk
for 5 minutes, and compares the workers' resident memory after the first minute
with their memory at the end: within 10% passes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_bench import (
    BIN,
    Target,
    create_clicks,
    drive,
    ensure_wrk,
    free_port,
    prepare_database,
    run_conversions,
    serve,
)


def workers_rss_kib(master_pid: int) -> int:
    children = subprocess.run(
        ["ps", "--ppid", str(master_pid), "-o", "rss="], capture_output=True, text=True, check=True
    ).stdout.split()
    return sum(int(rss) for rss in children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=5)
    arguments = parser.parse_args()
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    database_url = asyncio.run(prepare_database("postgres", workdir))
    run_conversions(database_url, "migrate")
    clicks_file = workdir / "clicks.txt"
    _, link_id = create_clicks(database_url, clicks_file, signed=False)
    port = free_port()
    app = serve(
        [str(BIN / "conversions"), "serve", "--port", str(port), "--workers", "2"],
        port,
        os.environ | {"DATABASE_URL": database_url},
        workdir / "app.log",
    )
    samples: dict[int, int] = {}

    def sample() -> None:
        started = time.monotonic()
        for minute in range(1, arguments.minutes + 1):
            time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
            samples[minute] = workers_rss_kib(app.pid)
            print(f"  minute {minute}: workers' RSS {samples[minute] / 1024:.1f} MiB", flush=True)

    sampler = threading.Thread(target=sample)
    try:
        sampler.start()
        target = Target("convert", clicks_file, link_id, secret=None)
        run = drive(wrk, port, target, "memory", arguments.minutes * 60 + 2, 64)
        sampler.join()
    finally:
        app.terminate()
        app.wait(timeout=30)
    growth = samples[arguments.minutes] / samples[1] - 1
    print(
        f"{run.requests:,} requests, {run.per_second:.0f} req/s; RSS after minute 1 "
        f"{samples[1] / 1024:.1f} MiB, after minute {arguments.minutes} "
        f"{samples[arguments.minutes] / 1024:.1f} MiB: {growth:+.1%} (limit +10%)"
    )
    return 0 if growth <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
