"""The conversion service: the one code path behind the pixel and GraphQL.

`record_conversion` takes a report as received, validates it, and, in its
worker's next group commit (models/group_commit.py), stores the conversion,
advances the click's stage and flags the click's first deposit. It never raises
for an expected situation: it returns an outcome value (models/outcomes.py) that
each face maps to its own answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from models.conversion_input import (
    ConversionInput,
    InvalidConversionError,
    RawConversion,
    parse_conversion,
)
from models.group_commit import committer
from models.outcomes import ConversionRecord, Invalid, Outcome
from models.tables import Source


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestMetadata:
    """What a browser fire tells us beyond its parameters.

    Its fields are columns of both a click and a conversion, which take them as a whole.
    """

    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None

    def columns(self) -> dict[str, str | None]:
        # Shallow, unlike dataclasses.asdict, which deep-copies: this runs on every fire.
        return {name: getattr(self, name) for name in _METADATA_FIELDS}


_METADATA_FIELDS = tuple(field.name for field in fields(RequestMetadata))


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
    except InvalidConversionError as invalid:
        return Invalid(invalid.errors)
    record = _new_record(conversion, source, metadata or RequestMetadata())
    return await committer().record(conversion, record)


def _new_record(
    conversion: ConversionInput, source: Source, metadata: RequestMetadata
) -> ConversionRecord:
    return ConversionRecord(
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
        **metadata.columns(),
    )
