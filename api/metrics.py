"""`GET /metrics`: the Prometheus text format, summed over every worker of a `serve`.

The official client's multiprocess mode does the summing: each worker writes its
values to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR`, which `conversions serve`
makes fresh before the workers start and removes when they are gone, and the worker
that answers a scrape reads them all. Without that variable (tests, an app served
some other way) the values are the one process's own.

Litestar's Prometheus plugin was not taken: its middleware never sees the hot paths,
which the front door answers before Litestar's middleware runs, and it times every
request into a histogram, which costs the pixel more than these two counters do. Its
controller's multiprocess reading is the one below, which also adds what is read at
scrape time (the oldest pending postback's age) and the token.

The hot paths' counts (requests, fires, visits) go to a plain dict of the worker first
and reach the shared files every second (`Tally`): a dict's increment costs the
request a fraction of the multiprocess value's (docs/operations.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import cast

from litestar import Litestar, Request, Response, get
from litestar.enums import MediaType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import SecurityScheme
from litestar.types import Message, Scope
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.settings import METRICS_DIRECTORY_VARIABLE
from models.errors import ErrorBody
from models.observers import Observer
from models.postbacks.outbox import oldest_pending_created_at
from models.store.engine import is_store_unavailable

logger = logging.getLogger(__name__)

PATH = "/metrics"
# The text format every Prometheus reads (the client's own default, 1.0.0, is new in
# Prometheus 3); Litestar adds "; charset=utf-8".
MEDIA_TYPE = "text/plain; version=0.0.4"
# How OpenAPI names the metrics token (api/openapi.py declares it).
METRICS_SCHEME = "MetricsToken"
METRICS_SECURITY_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="METRICS_TOKEN, when it is set: `Authorization: Bearer <token>`.",
)
# A request no route matched (404s of unknown paths, the front door's 431).
UNROUTED = "unrouted"
# The group commit's batches are at most 200 reports (models/store/group_commit.py).
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# Every worker's metrics; in multiprocess mode their values live in the shared files.
REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "conversions_http_requests",
    "HTTP requests answered, by route template and status",
    ["route", "status"],
    registry=REGISTRY,
)
PIXEL_FIRES = Counter(
    "conversions_pixel_fires",
    "Pixel fires (GET and POST) by outcome",
    ["outcome"],
    registry=REGISTRY,
)
TRACKING_VISITS = Counter(
    "conversions_tracking_visits",
    "Tracking-link visits by outcome",
    ["outcome"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "conversions_group_commit_batch_size",
    "Reports written by one group-commit transaction",
    buckets=BATCH_SIZE_BUCKETS,
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "conversions_group_commit_seconds",
    "Time one group-commit batch took to write and commit",
    buckets=COMMIT_SECONDS_BUCKETS,
    registry=REGISTRY,
)
POSTBACK_ATTEMPTS = Counter(
    "conversions_postback_attempts",
    "Postback sends by result: delivered, pending (to be retried) or failed (given up)",
    ["result"],
    registry=REGISTRY,
)
OPEN_SUBSCRIPTIONS = Gauge(
    "conversions_open_subscriptions",
    "GraphQL subscriptions open now",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
OLDEST_PENDING_POSTBACK = "conversions_postback_oldest_pending_age_seconds"


@cache
def _snake_case(name: str) -> str:
    """`ClickNotFound` -> `click_not_found`: an outcome class's name as a label value."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Tally:
    """The hot paths' counts, kept in a plain dict of this process and added to the
    shared counter now and then (`flush`): an increment of the client's multiprocess
    value takes a lock and writes the memory-mapped file, several times the cost of a
    dict's (bench/observability_cost.py)."""

    def __init__(self, counter: Counter, label: Callable[[Hashable], tuple[str, ...]]) -> None:
        self._counter = counter
        self._label = label
        self._counts: dict[Hashable, int] = {}

    def add(self, key: Hashable) -> None:
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for key, count in counts.items():
            self._counter.labels(*self._label(key)).inc(count)


def _route_and_status(key: Hashable) -> tuple[str, str]:
    route, status = cast(tuple[str, int], key)
    return route, str(status)


def _outcome(key: Hashable) -> tuple[str]:
    return (_snake_case(cast(str, key)),)


REQUEST_TALLY = Tally(HTTP_REQUESTS, _route_and_status)
FIRE_TALLY = Tally(PIXEL_FIRES, _outcome)
VISIT_TALLY = Tally(TRACKING_VISITS, _outcome)
TALLIES = (REQUEST_TALLY, FIRE_TALLY, VISIT_TALLY)
# How far behind the shared counters may be: far less than any scrape interval.
FLUSH_SECONDS = 1.0


def flush_tallies() -> None:
    for tally in TALLIES:
        tally.flush()


class MetricsObserver(Observer):
    """The hooks of models/observers.py, counted."""

    def fire_answered(self, outcome: str) -> None:
        FIRE_TALLY.add(outcome)

    def visit_answered(self, outcome: str) -> None:
        VISIT_TALLY.add(outcome)

    def batch_committed(self, size: int, seconds: float) -> None:
        BATCH_SIZE.observe(size)
        COMMIT_SECONDS.observe(seconds)

    def postback_attempted(self, result: str) -> None:
        POSTBACK_ATTEMPTS.labels(result).inc()

    def subscriptions_changed(self, delta: int) -> None:
        OPEN_SUBSCRIPTIONS.inc(delta)


async def count_response(message: Message, scope: Scope) -> None:
    """`before_send` hook: one count per response, by route template (never the raw
    path: the label's values stay few) and status."""
    if message["type"] == "http.response.start":
        REQUEST_TALLY.add((scope.get("path_template") or UNROUTED, message["status"]))


class _Collected:
    """A collector of metrics already made (a registry takes collectors, not metrics)."""

    def __init__(self, *sources: Collector | Metric) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            if isinstance(source, Metric):
                yield source
            else:
                yield from source.collect()


def _forget_dead_workers(directory: str) -> None:
    """A worker that died without its shutdown (killed, crashed) left its live gauges'
    files: they must no longer count. Its counters' files stay, as counters do."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass  # alive, as another user's process


async def _oldest_pending_postback() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        OLDEST_PENDING_POSTBACK,
        "Age of the oldest postback delivery still to be sent; 0 when none waits",
    )
    try:
        created_at = await oldest_pending_created_at()
    except Exception as error:
        if not is_store_unavailable(error):
            raise
        # The scrape still answers; the series is missing until the store is back.
        logger.warning("metrics: store unavailable, no postback age: %r", error)
        return gauge
    age = 0.0 if created_at is None else (datetime.now(UTC) - created_at).total_seconds()
    gauge.add_metric([], max(age, 0.0))
    return gauge


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Compared in constant time: no timing tells how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


def metrics_route(token: str | None) -> HTTPRouteHandler:
    """The scrape's handler; with `token`, only `Authorization: Bearer <token>` reads it."""

    @get(
        PATH,
        summary="Prometheus metrics, summed over every worker",
        description="Served when METRICS_ENABLED=true (otherwise the path is 404); with "
        "METRICS_TOKEN set, only to `Authorization: Bearer <token>`. The series are listed "
        "in docs/operations.md.",
        tags=["operations"],
        security=[{METRICS_SCHEME: []}],
        responses={
            200: ResponseSpec(
                str, description="The Prometheus text exposition format", media_type=MEDIA_TYPE
            ),
            401: ResponseSpec(
                ErrorBody,
                description="METRICS_TOKEN is set and the request does not carry it",
                media_type=MediaType.JSON,
            ),
        },
    )
    async def metrics(request: Request) -> Response[bytes]:
        if not _authorized(request, token):
            raise NotAuthorizedException(
                "send the metrics token as Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        flush_tallies()
        registry = CollectorRegistry()
        directory = os.environ.get(METRICS_DIRECTORY_VARIABLE)
        if directory:
            _forget_dead_workers(directory)
            # Reads the files into the registry; every worker's values, summed.
            multiprocess.MultiProcessCollector(registry, path=directory)
            registry.register(_Collected(await _oldest_pending_postback()))
        else:
            registry.register(_Collected(REGISTRY, await _oldest_pending_postback()))
        return Response(generate_latest(registry), media_type=MEDIA_TYPE)

    return metrics


async def _flush_now_and_then() -> None:
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        flush_tallies()


@asynccontextmanager
async def worker_metrics(_: Litestar) -> AsyncIterator[None]:
    """A lifespan: the worker's tallies reach the shared counters every FLUSH_SECONDS
    (a scrape's own worker's at once), and last when it stops; a worker that stops
    drops its live gauges' values (open subscriptions) from the sum, as a dead one does
    at the next scrape."""
    flusher = asyncio.create_task(_flush_now_and_then())
    try:
        yield
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        flush_tallies()
        if directory := os.environ.get(METRICS_DIRECTORY_VARIABLE):
            multiprocess.mark_process_dead(os.getpid(), directory)
