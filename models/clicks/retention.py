"""Retention: clicks older than an age that nothing refers to (no conversion) are
deleted, a small batch at a time, so that the store stops growing with visits that
never converted. `conversions prune --clicks-older-than 180d` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models.errors import FieldError, InvalidInputError
from models.store.retention_sql import count_prunable_clicks, delete_prunable_clicks

# Small: each batch is one short transaction, and the pixel waits on none of its rows
# for longer than one.
DEFAULT_BATCH_SIZE = 500
AGE = re.compile(r"(?P<count>[0-9]{1,6})(?P<unit>[hdw])")
UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Beyond any data: a typo's age rather than a retention period.
MAX_AGE = timedelta(days=100 * 365)


def parse_age(text: str, field: str = "clicks_older_than") -> timedelta:
    """`180d`, `12h` or `26w` as a duration; anything else names what is wrong."""
    match = AGE.fullmatch(text.strip())
    if match is None:
        message = f"{{{field}}} must be a whole number and a unit, h, d or w, as 180d"
        raise InvalidInputError([FieldError(field, "invalid_age", message)])
    age = int(match["count"]) * UNITS[match["unit"]]
    if not timedelta(0) < age <= MAX_AGE:
        message = f"{{{field}}} must be more than 0 and at most {MAX_AGE.days} days"
        raise InvalidInputError([FieldError(field, "out_of_range", message)])
    return age


@dataclass(frozen=True)
class PruneSummary:
    cutoff: datetime
    # Clicks found prunable when the run began; a dry run deletes none.
    prunable: int
    deleted: int
    batches: int


async def prune_clicks(
    older_than: timedelta,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    started: Callable[[int], None] = lambda prunable: None,
    progressed: Callable[[int], None] = lambda deleted: None,
    now: datetime | None = None,
) -> PruneSummary:
    """Delete the clicks made more than `older_than` ago that no conversion (nor any
    other row) refers to, `batch_size` at a time. `started` hears how many there are,
    `progressed` each batch's deletions."""
    if batch_size < 1:
        raise InvalidInputError([FieldError("batch_size", "out_of_range", "must be at least 1")])
    cutoff = (now or datetime.now(UTC)) - older_than
    prunable = await count_prunable_clicks(cutoff)
    started(prunable)
    deleted = batches = 0
    if not dry_run:
        while True:
            count = await delete_prunable_clicks(cutoff, batch_size)
            batches += 1
            deleted += count
            progressed(count)
            # A short batch is the last: nothing older is left (or only rows in use now,
            # which the next run takes).
            if count < batch_size:
                break
    return PruneSummary(cutoff=cutoff, prunable=prunable, deleted=deleted, batches=batches)
