"""schemathesis over the served app's whole OpenAPI description, as `schemathesis run` does.

Every operation (the pixel, the tracking link, `/pixel.js`, GraphQL, the probes) goes
through schemathesis' own engine, with the repository's schemathesis.toml, an admin key,
every check but positive data acceptance (a valid-looking report may still be refused:
a time before its click, a deposit without its currency), and two fixed seeds; the
phases are the CLI's (coverage, fuzzing, stateful). Any finding fails the test.

One more check rides along on every response: a pixel or tracking-link request stores
something only when it answers its success status (202, 302), and HEAD never does.
Half of the generated ids are swapped for a stored click's and link's, so requests
reach the store rather than stopping at 404.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from piccolo.engine.base import Engine
from schemathesis.config import CacheConfig, SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from models.keys import Scope, create_api_key
from models.store.tables import Click, Conversion
from models.tracking.offers import create_offer
from tests.served_app import ServedApp, served_app
from tests.support import new_click, new_link

OPENAPI_PATH = "/schema/openapi.json"
CONFIG_FILE = Path(__file__).parent.parent / "schemathesis.toml"
SEEDS = (977, 31337)
# Per operation and phase: both seeds in under two minutes per engine on two shared cores.
MAX_EXAMPLES = 40
SUCCESS_STATUS = {"/convert/{click_id}": 202, "/track/{tracking_id}": 302}
DESCRIBED_OPERATIONS = {
    "GET /convert/{click_id}",
    "POST /convert/{click_id}",
    "HEAD /convert/{click_id}",
    "GET /track/{tracking_id}",
    "HEAD /track/{tracking_id}",
    "GET /pixel.js",
    "HEAD /pixel.js",
    "GET /graphql",
    "POST /graphql",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}


@dataclass(frozen=True)
class Counts:
    clicks: int
    conversions: int


async def _counts() -> Counts:
    return Counts(clicks=await Click.count(), conversions=await Conversion.count())


@dataclass
class StoreWatch:
    """The store's counts as of the last response, and what broke the rule since."""

    counts: Callable[[], Counts]
    last: Counts
    broken: list[str] = field(default_factory=list)


# The engine calls checks by name from a registry; this one reads the run's watch here.
WATCH: list[StoreWatch] = []


@schemathesis.check
def stores_only_on_success(ctx: Any, response: Any, case: Any) -> bool | None:
    if not WATCH:
        return None
    watch = WATCH[0]
    before, after = watch.last, watch.counts()
    watch.last = after
    path, method = case.operation.path, case.method.upper()
    success = SUCCESS_STATUS.get(path)
    if success is None:
        return None
    request = f"{method} {response.request.url} answered {response.status_code}"
    if method == "HEAD" or response.status_code != success:
        expected = {before}
    elif path.startswith("/convert/"):
        # An exact repeat or a test=true fire is accepted without a new row.
        expected = {before, Counts(before.clicks, before.conversions + 1)}
    else:
        expected = {Counts(before.clicks + 1, before.conversions)}
    if after not in expected:
        watch.broken.append(f"{request}: the store went from {before} to {after}")
    return None


def _config(seed: int, api_key: str) -> SchemathesisConfig:
    config = SchemathesisConfig.from_path(CONFIG_FILE)
    config.update(seed=seed, max_failures=None)
    # No replay of another run's crashes: each run stands on its seed alone.
    config.cache = CacheConfig(enabled=False)
    config.projects.override.update(headers={"Authorization": f"Bearer {api_key}"})
    config.projects.override.checks.update(
        included_check_names=["all"], excluded_check_names=["positive_data_acceptance"]
    )
    config.projects.override.generation.update(max_examples=MAX_EXAMPLES, database="none")
    return config


def run_schemathesis(
    base_url: str, config: SchemathesisConfig, known_ids: dict[str, str]
) -> tuple[set[str], list[str]]:
    """The operations tested and every finding, as `schemathesis run` would print them."""
    schema = schemathesis.openapi.from_url(f"{base_url}{OPENAPI_PATH}", config=config)

    @schema.hook
    def flatmap_path_parameters(_: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        known = {name: known_ids.get(name, value) for name, value in path_parameters.items()}
        return st.sampled_from([path_parameters, known])

    tested: set[str] = set()
    findings: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            tested.add(event.recorder.label)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        case = event.recorder.cases[case_id].value
                        failure = check.failure_info.failure
                        findings.append(
                            f"{case.method} {case.path} ({check.name}): {failure.title}\n"
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            findings.append(f"schemathesis error on {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            findings.append(f"schemathesis error: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            findings += [f"{failure.title}: {failure.message}" for failure in event.failures]
    return tested, findings


@pytest.fixture
def served(db: Engine, tmp_path: Path) -> Iterator[ServedApp]:
    # /metrics on, behind a token schemathesis does not have: its described 401 is fuzzed.
    environment = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": "fuzzing-without-this-token",
    }
    with served_app(environment, tmp_path / "serve.log") as app:
        yield app


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", SEEDS)
async def test_schemathesis_finds_nothing_and_only_successes_store(
    served: ServedApp, seed: int
) -> None:
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id, "partner-42")
    known_ids = {"click_id": str(await new_click()), "tracking_id": str(link.id)}
    api_key = (await create_api_key("schemathesis", Scope.ADMIN)).secret
    loop = asyncio.get_running_loop()

    def counts() -> Counts:
        # schemathesis runs on a thread; the store belongs to this loop.
        return asyncio.run_coroutine_threadsafe(_counts(), loop).result(timeout=10)

    watch = StoreWatch(counts, await _counts())
    WATCH[:] = [watch]
    try:
        tested, findings = await asyncio.to_thread(
            run_schemathesis, served.base_url, _config(seed, api_key), known_ids
        )
    finally:
        WATCH.clear()

    assert not findings, "\n\n".join(findings)
    assert not watch.broken, "\n".join(watch.broken)
    assert tested >= DESCRIBED_OPERATIONS
    # The swapped ids reached the store: the rule above was tested, not skipped.
    assert await Conversion.count() > 0
    assert await Click.count() > 1
