"""CPU per request that request ids and metrics add to the hot paths, in process.

The front door answers a pixel GET from a handler that does nothing but tell the
observer its outcome, through the app's own `before_send` hooks: with the request's
id, then with the metrics' two counts on top (in the client's multiprocess mode, as
`serve` runs, and in single-process mode). Also the bare increments the counts could
have been: the client's counter value against the plain dict api/metrics.py counts in.

    python -m bench.observability_cost   # with PYTHONPATH at the repository

No server, no database: it measures the code each request runs, nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, cast

from litestar.types import Message, Receive, Scope, Send

REQUESTS = 200_000
REPEATS = 5
HEADERS = [
    (b"host", b"conversions.example"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
]
Hook = Callable[[Message, Scope], Awaitable[None]]


def _complete(awaitable: Awaitable[None]) -> None:
    """Run a coroutine that never suspends, without an event loop's cost."""
    coroutine = cast(Coroutine[Any, Any, None], awaitable)
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the measured path suspended")


def _door_cost(hooks: Sequence[Hook], *, metrics: bool, incoming_id: bool) -> float:
    """Best of REPEATS: CPU µs per GET answered by the front door with `hooks`."""
    from api.front_door import front_door
    from api.metrics import MetricsObserver
    from models.observers import Observer, listen, observer
    from pixel.responses import Answer

    accepted = Answer(202)
    listen(MetricsObserver() if metrics else Observer())

    async def recorded(scope: Scope, click_id: str) -> Answer:
        observer().fire_answered("Recorded")
        return accepted

    async def litestar(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the door answers these")

    door = front_door(litestar, max_header_bytes=16384, raw_gets={"/convert/{c}": recorded})
    headers = HEADERS + ([(b"x-request-id", b"lb-7f3a9c2e")] if incoming_id else [])

    def request() -> None:
        scope: Any = {"type": "http", "method": "GET", "path": "/convert/x", "headers": headers}

        async def send(message: Message) -> None:
            for hook in hooks:
                await hook(message, scope)

        _complete(door(scope, _never_receive, send))

    best = min(timeit.repeat(request, number=REQUESTS, repeat=REPEATS, timer=time.process_time))
    return best / REQUESTS * 1e6


async def _never_receive() -> Any:
    raise AssertionError("a GET's body is never read")


def _increment_costs() -> tuple[float, float]:
    from prometheus_client import CollectorRegistry, Counter

    counter = Counter("c", "c", ["route", "status"], registry=CollectorRegistry())
    child = counter.labels("/convert/{click_id}", "202")
    tally: Tally[tuple[str, int]] = Tally()
    key = ("/convert/{click_id}", 202)

    def count_in_dict() -> None:
        tally[key] += 1

    def per_call(function: Callable[[], None]) -> float:
        runs = min(timeit.repeat(function, number=REQUESTS, repeat=REPEATS))
        return runs / REQUESTS * 1e6

    return per_call(child.inc), per_call(count_in_dict)


def measure(mode: str) -> None:
    from api.app import add_headers
    from api.metrics import count_response

    print(f"{mode} mode (µs of CPU per request, best of {REPEATS} x {REQUESTS:,})")
    rows: list[tuple[str, list[Hook], bool, bool]] = [
        ("front door, nosniff and request id (new)", [add_headers], False, False),
        ("front door, nosniff and request id (kept)", [add_headers], False, True),
        ("the same with metrics on", [add_headers, count_response], True, False),
    ]
    for label, hooks, metrics, incoming in rows:
        print(f"  {label:48} {_door_cost(hooks, metrics=metrics, incoming_id=incoming):6.2f}")
    counter, in_dict = _increment_costs()
    print(f"  {'one counter increment':48} {counter:6.2f}")
    print(f"  {'one increment of a plain dict, for comparison':48} {in_dict:6.2f}")


def main() -> None:
    if len(sys.argv) > 1:
        measure(sys.argv[1])
        return
    # Each mode in a process of its own: the client picks it when first imported.
    with tempfile.TemporaryDirectory() as directory:
        for mode, extra in (
            ("single-process", {}),
            ("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": directory}),
        ):
            subprocess.run(
                [sys.executable, "-m", "bench.observability_cost", mode],
                env=os.environ | extra,
                check=True,
            )


if __name__ == "__main__":
    main()
