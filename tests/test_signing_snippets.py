"""The README's signing snippets, run as written against a served app.

Each fenced block of the README's "Signed fires" section is run by its interpreter
with `CONVERSIONS_URL`, `CLICK_ID` and `FIRE_SECRET` in its environment, on a click
of an offer that takes only signed deposits; it must print 202 and leave a verified
deposit behind. PHP and Node.js run where installed (`.ci/run` installs PHP; in CI a
missing interpreter is a failure).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from piccolo.engine.base import Engine

from models.store.tables import FirePolicy
from models.tracking.offers import create_offer, rotate_fire_secret
from tests.conftest import IN_CI
from tests.served_app import ServedApp, served_app
from tests.support import new_click, new_link, stored_conversions

README = Path(__file__).parent.parent / "README.md"
SECTION = "### Signed fires"
INTERPRETERS = {"sh": ["bash", "-c"], "python": [sys.executable, "-c"], "php": ["php", "-r"]}
INTERPRETERS["js"] = ["node", "-e"]


def snippets() -> dict[str, str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n### ", start + len(SECTION))
    section = text[start:end]
    blocks = dict(re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL))
    assert set(blocks) == set(INTERPRETERS), f"the section's snippets changed: {sorted(blocks)}"
    return blocks


async def run(command: list[str], environment: dict[str, str]) -> tuple[int, str]:
    """Run a snippet; its exit status and what it printed (stderr after stdout)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | environment,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, (stdout + stderr).decode()


@pytest.fixture
def served(db: Engine, tmp_path: Path) -> Iterator[ServedApp]:
    with served_app({"DATABASE_URL": os.environ["DATABASE_URL"]}, tmp_path / "serve.log") as app:
        yield app


@pytest.mark.parametrize("language", sorted(INTERPRETERS))
async def test_each_signing_snippet_fires_a_verified_deposit(
    served: ServedApp, language: str
) -> None:
    command = INTERPRETERS[language]
    if shutil.which(command[0]) is None:
        if IN_CI:
            pytest.fail(f"{command[0]} is missing: .ci/run installs it")
        pytest.skip(f"{command[0]} is not installed")
    code = snippets()[language]
    if language == "php":
        code = code.removeprefix("<?php\n")  # php -r takes the code without its tag
    offer = await create_offer("Signed", "https://operator.example/", FirePolicy.SIGNED_DEPOSITS)
    secret = await rotate_fire_secret(offer.id)
    assert secret is not None
    link = await new_link(offer.id, "partner")
    click_id = await new_click(tracking_link_id=link.id)
    environment = {"CONVERSIONS_URL": served.base_url, "CLICK_ID": str(click_id)}
    returncode, output = await run([*command, code], environment | {"FIRE_SECRET": secret})
    assert returncode == 0, output
    assert output.strip() == "202", output
    (deposit,) = await stored_conversions(click_id)
    assert deposit["verified"] is True
    assert deposit["amount_minor"] == 4000
    assert deposit["transaction_id"] == "order-1842"
    # The same snippet with another secret is refused.
    _, refused = await run([*command, code], environment | {"FIRE_SECRET": "not-the-secret"})
    assert refused.split()[0] == "401", refused
    assert secret not in served.log()
