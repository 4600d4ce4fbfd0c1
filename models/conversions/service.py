"""The conversion service: the one code path behind the pixel and GraphQL.

`record_conversion` takes a report as received, validates it, and, in its
worker's next group commit (models/store/group_commit.py), stores the conversion,
advances the click's stage and flags the click's first deposit. It never raises
for an expected situation: it returns an outcome value (models/conversions/outcomes.py)
that each face maps to its own answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from models.conversions.batch import Report, write_batch
from models.conversions.input import RawConversion, parse_conversion
from models.conversions.outcomes import Invalid, Outcome
from models.conversions.records import ConversionRecord
from models.errors import InvalidInputError, StoreUnavailable
from models.metadata import RequestMetadata
from models.store.group_commit import GroupCommitter, PerEventLoop
from models.store.tables import Source

committer = PerEventLoop[Report, Outcome](
    lambda: GroupCommitter(write_batch, unavailable=StoreUnavailable)
)


async def record_conversion(
    raw: RawConversion,
    *,
    source: Source,
    metadata: RequestMetadata | None = None,
    received_at: datetime | None = None,
) -> Outcome:
    received_at = received_at or datetime.now(UTC)
    try:
        conversion = parse_conversion(raw, received_at=received_at)
    except InvalidInputError as invalid:
        return Invalid(invalid.errors)
    record = ConversionRecord(
        id=uuid.uuid4(),
        click_id=conversion.click_id,
        type=conversion.type,
        occurred_at=conversion.occurred_at,
        received_at=conversion.received_at,
        player_id=conversion.player_id,
        transaction_id=conversion.transaction_id,
        currency=conversion.currency,
        amount_minor=conversion.amount_minor,
        is_first_deposit=False,
        source=source,
        **(metadata or RequestMetadata()).columns(),
    )
    return await committer().submit(Report(conversion, record))
