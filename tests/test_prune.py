"""Retention: `conversions prune --clicks-older-than 180d` deletes old clicks without
conversions, in batches, and nothing else (SPEC part two, "Operations"; issue 16)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import timedelta

import asyncpg
import pytest
from piccolo.engine.base import Engine

from models.clicks.retention import parse_age, prune_clicks
from models.errors import InvalidInputError
from models.partners.partners import create_partner
from models.store.engine import is_postgres
from models.store.tables import Click
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import seed_conversion
from tests.served_app import CONVERSIONS
from tests.support import new_click

OLD = timedelta(days=200)
YOUNG = timedelta(days=100)
RETENTION = timedelta(days=180)


async def remaining() -> set[str]:
    return {str(row["id"]) for row in await Click.select(Click.id)}


async def test_old_clicks_without_conversions_go_and_the_rest_stay(db: Engine) -> None:
    partner = await create_partner("net")
    link = await create_tracking_link(
        (await create_offer("Casino", "https://c.example/")).id, partner.id
    )
    doomed = {str(await new_click(age=OLD + timedelta(minutes=n))) for n in range(5)}
    doomed.add(str(await new_click(age=OLD, tracking_link_id=link.id)))
    converted = await new_click(age=OLD)
    await seed_conversion(converted, "install")
    young = await new_click(age=YOUNG)
    kept = {str(converted), str(young)}

    counted = await prune_clicks(RETENTION, dry_run=True, batch_size=2)
    assert (counted.prunable, counted.deleted, counted.batches) == (6, 0, 0)
    assert await remaining() == doomed | kept

    heard: list[int] = []
    summary = await prune_clicks(
        RETENTION, batch_size=2, started=heard.append, progressed=heard.append
    )
    # Told the total first, then each batch of at most 2, the last one short.
    assert heard == [6, 2, 2, 2, 0]
    assert (summary.prunable, summary.deleted, summary.batches) == (6, 6, 4)
    assert await remaining() == kept
    # Again: nothing left to do.
    again = await prune_clicks(RETENTION)
    assert (again.prunable, again.deleted) == (0, 0)
    assert await remaining() == kept


@pytest.mark.parametrize(
    ("text", "age"),
    [("180d", timedelta(days=180)), ("12h", timedelta(hours=12)), ("26w", timedelta(weeks=26))],
)
def test_ages_are_read(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "invalid_age"),
        ("180", "invalid_age"),
        ("d", "invalid_age"),
        ("-5d", "invalid_age"),
        ("1.5d", "invalid_age"),
        ("180m", "invalid_age"),
        ("180 days", "invalid_age"),
        ("1234567d", "invalid_age"),
        ("0d", "out_of_range"),
        ("40000d", "out_of_range"),
    ],
)
def test_bad_ages_are_refused(text: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_age(text)
    [error] = refused.value.errors
    assert (error.field, error.code) == ("clicks_older_than", code)


async def test_a_click_in_use_is_skipped_not_waited_for(db: Engine) -> None:
    """PostgreSQL: a click whose row another transaction holds (as a conversion's insert
    does, taking its key-share lock) is left for the next run; the batch does not wait."""
    if not is_postgres(db):
        pytest.skip("row locks are PostgreSQL's; SQLite's writers take turns")
    in_use = await new_click(age=OLD)
    await new_click(age=OLD)
    holder = await asyncpg.connect(db.config["dsn"], timeout=5)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM click WHERE id = $1 FOR KEY SHARE", in_use)
            async with asyncio.timeout(2):
                summary = await prune_clicks(RETENTION)
            assert (summary.prunable, summary.deleted) == (2, 1)
            assert await remaining() == {str(in_use)}
    finally:
        await holder.close()
    assert (await prune_clicks(RETENTION)).deleted == 1
    assert await remaining() == set()


def prune(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVERSIONS, "prune", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
        check=False,
    )


async def test_the_command_prunes_with_a_summary(db: Engine) -> None:
    old = await new_click(age=OLD)
    young = await new_click(age=YOUNG)

    dry = prune("--clicks-older-than", "180d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 1 clicks" in dry.stdout
    assert await remaining() == {str(old), str(young)}

    done = prune("--clicks-older-than", "180d", "--batch-size", "50")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Deleted 1 clicks made before ")
    assert "in 1 batches of at most 50" in done.stdout
    # Not a terminal: plain progress lines, no bar's control characters.
    assert done.stderr == "deleting up to 1 clicks\n"
    assert await remaining() == {str(young)}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--clicks-older-than", "180"],
            "argument --clicks-older-than: the age must be a whole number and a unit",
        ),
        (["--clicks-older-than", "0d"], "argument --clicks-older-than: the age must be more"),
        (
            ["--clicks-older-than", "180d", "--batch-size", "0"],
            "argument --batch-size: must be a whole number, at least 1",
        ),
        ([], "the following arguments are required: --clicks-older-than"),
    ],
)
def test_the_command_refuses_bad_arguments(arguments: list[str], message: str) -> None:
    refused = prune(*arguments)
    assert refused.returncode == 2
    assert message in refused.stderr, refused.stderr
