"""schemathesis against the served app's own OpenAPI description: the pixel and the tracking link.

Requests generated from the description, valid and invalid, go over real HTTP to
`conversions serve` on the suite's database. None may fail with a 5xx, none may answer a
status the description does not list, and a request not answered with its route's
success status (202 for the pixel, 302 for the tracking link) must store nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from piccolo.engine.base import Engine
from schemathesis import Case, GenerationMode

from models.store.tables import Click, Conversion
from models.tracking.offers import create_offer
from tests.served_app import ServedApp, served_app
from tests.support import new_click, new_link

OPENAPI_PATH = "/schema/openapi.json"
FUZZED_PATHS = re.compile(r"^/(convert|track)/")
SUCCESS_STATUS = {"/convert/{click_id}": 202, "/track/{tracking_id}": 302}
FUZZ_SEED = 20261126
MAX_EXAMPLES = 300


@dataclass(frozen=True)
class Counts:
    clicks: int
    conversions: int


async def _counts() -> Counts:
    return Counts(clicks=await Click.count(), conversions=await Conversion.count())


@pytest.fixture
def served(db: Engine, tmp_path: Path) -> Iterator[ServedApp]:
    with served_app({"DATABASE_URL": os.environ["DATABASE_URL"]}, tmp_path / "serve.log") as app:
        yield app


def documented_statuses(case: Case) -> set[int]:
    return {int(status) for status in case.operation.definition.raw["responses"]}


def check_case(case: Case, base_url: str, counts: Callable[[], Counts]) -> None:
    before = counts()
    response = case.call(base_url=base_url, timeout=10)
    after = counts()
    request = f"{case.method} {response.request.url}"

    assert response.status_code < 500, f"{request}: {response.status_code} {response.text}"
    assert response.status_code in documented_statuses(case), (
        f"{request}: {response.status_code} is not among the documented "
        f"{sorted(documented_statuses(case))}"
    )
    if case.method == "HEAD" or response.status_code != SUCCESS_STATUS[case.operation.path]:
        assert after == before, f"{request} answered {response.status_code} and stored something"
    elif case.operation.path.startswith("/convert/"):
        # An exact repeat or a test=true fire is accepted without a new row.
        assert after.clicks == before.clicks
        assert after.conversions - before.conversions in (0, 1)
    else:
        assert after == Counts(clicks=before.clicks + 1, conversions=before.conversions)


def fuzz(base_url: str, known_ids: dict[str, str], counts: Callable[[], Counts]) -> list[str]:
    """Run the generated requests; the operations fuzzed, for the test to check it saw them."""
    schema = schemathesis.openapi.from_url(f"{base_url}{OPENAPI_PATH}")
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if FUZZED_PATHS.match(result.ok().path)
    ]
    strategies = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Generated ids find only 404s and 422s; the known ones reach the store.
            strategies.append(operation.as_strategy(generation_mode=mode))
            strategies.append(
                operation.as_strategy(generation_mode=mode, path_parameters=known_ids)
            )

    @seed(FUZZ_SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=st.one_of(strategies))
    def run(case: Case) -> None:
        check_case(case, base_url, counts)

    run()
    return [operation.label for operation in operations]


async def test_fuzzed_pixel_and_tracking_requests_never_fail_and_store_only_on_success(
    served: ServedApp,
) -> None:
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    link = await new_link(offer.id, "partner-42")
    known_ids = {"click_id": str(await new_click()), "tracking_id": str(link.id)}
    loop = asyncio.get_running_loop()

    def counts() -> Counts:
        # The fuzzing runs on a thread; the store belongs to this loop.
        return asyncio.run_coroutine_threadsafe(_counts(), loop).result(timeout=10)

    fuzzed = await asyncio.to_thread(fuzz, served.base_url, known_ids, counts)

    assert set(fuzzed) >= {
        "GET /convert/{click_id}",
        "POST /convert/{click_id}",
        "HEAD /convert/{click_id}",
        "GET /track/{tracking_id}",
    }
