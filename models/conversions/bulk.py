"""Many reports at once (GraphQL's recordConversions, the CSV import): each through
`record_conversion`, exactly as if it came alone, submitted together so that they
share the worker's group-commit batches instead of waiting for one commit each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from models.clicks import queries as clicks
from models.conversions.input import RawConversion
from models.conversions.outcomes import Outcome
from models.conversions.service import record_conversion
from models.errors import FieldError, InvalidInputError
from models.partners.access import EVERYTHING, Access
from models.store.tables import Source

# What one request may carry: its reports wait for their batches together, so this
# bounds how long one caller can hold the group commit (five batches of 200).
MAX_BULK_REPORTS = 1_000


async def record_conversions(
    raws: Sequence[RawConversion], *, source: Source, access: Access = EVERYTHING
) -> list[Outcome]:
    """Every report's outcome, in order; more than MAX_BULK_REPORTS raises
    InvalidInputError before anything is stored.

    The reports are queued in their order, so a report repeating an earlier one of the
    same call (an install twice, a transaction id twice) is its Duplicate, as it would
    be had they come one after the other."""
    if len(raws) > MAX_BULK_REPORTS:
        message = f"at most {MAX_BULK_REPORTS} reports at once, not {len(raws)}: send them in parts"
        raise InvalidInputError([FieldError("inputs", "too_many", message)])
    visible_clicks = None
    if not access.is_everything:
        # One look-up for the whole call rather than one per report; it also leaves no
        # await between the reports' validation and their place in the queue.
        visible_clicks = (await clicks.READS.by_ids(access, _click_ids(raws))).keys()
    # gather() starts the reports in order, and each joins the queue at its first step.
    return list(
        await asyncio.gather(
            *(
                record_conversion(raw, source=source, access=access, visible_clicks=visible_clicks)
                for raw in raws
            )
        )
    )


def _click_ids(raws: Sequence[RawConversion]) -> list[uuid.UUID]:
    """The click ids of the reports that name one well-formed; the others are invalid."""
    ids = set()
    for raw in raws:
        try:
            ids.add(uuid.UUID(raw.click_id))
        except ValueError:
            continue
    return sorted(ids)
