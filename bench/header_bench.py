"""A worker's memory under a 200 MB request header, and how long a half-sent request
stays open (`make bench-header`).

Serves the app with one worker on SQLite four ways: uvicorn's own httptools and h11
protocols (before), and `conversions serve`'s bounded ones (after, api/server.py). For
each it reads the worker's resident memory (VmRSS, and its peak VmHWM) before and after
one client sends a 200 MB header, then times how long the server keeps a connection
that sent half a request head open (given up on after --wait seconds).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_bench import BIN, free_port, run_conversions, serve

HEADER_BYTES = 200 * 1024 * 1024
UVICORN = [str(BIN / "uvicorn"), "api.app:create_app", "--factory", "--no-access-log"]
SERVERS = {
    "uvicorn httptools (before)": [*UVICORN, "--http", "httptools"],
    "uvicorn h11 (before)": [*UVICORN, "--http", "h11"],
    "conversions serve httptools (after)": [str(BIN / "conversions"), "serve"],
    "conversions serve --http h11 (after)": [str(BIN / "conversions"), "serve", "--http", "h11"],
}


def memory_mib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0]) // 1024
    return fields


def send_header(port: int) -> str:
    """Send a 200 MB header; what the server did about it."""
    chunk = b"a" * (1024 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        try:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Padding: ")
            while sent < HEADER_BYTES:
                connection.sendall(chunk)
                sent += len(chunk)
            connection.sendall(b"\r\n\r\n")
            status = connection.recv(64).split(b"\r\n")[0].decode()
        except OSError as error:
            return f"closed after {sent // (1024 * 1024)} MiB ({type(error).__name__})"
    return f"read it all, answered {status!r}"


def half_sent_seconds(port: int, wait: float) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
        started = time.monotonic()
        try:
            while connection.recv(4096):
                pass
        except TimeoutError:
            return f"still open after {wait:.0f} s"
        except ConnectionResetError:
            pass
        return f"closed after {time.monotonic() - started:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wait", type=float, default=30.0, help="give up on a half-sent request")
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-header-"))
    database_url = f"sqlite:///{workdir / 'bench.sqlite'}"
    run_conversions(database_url, "migrate")
    print(f"{'server':40} {'before MiB':>11} {'after MiB':>10} {'peak MiB':>9}  header; half-sent")
    for name, command in SERVERS.items():
        port = free_port()
        log = workdir / f"{name.split()[0]}-{port}.log"
        app = serve(
            [*command, "--port", str(port)], port, os.environ | {"DATABASE_URL": database_url}, log
        )
        try:
            before = memory_mib(app.pid)
            outcome = send_header(port)
            time.sleep(0.5)
            after = memory_mib(app.pid)
            half_sent = half_sent_seconds(port, arguments.wait)
        finally:
            app.terminate()
            app.wait(timeout=30)
        print(
            f"{name:40} {before['VmRSS']:>11} {after['VmRSS']:>10} {after['VmHWM']:>9}"
            f"  {outcome}; {half_sent}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
