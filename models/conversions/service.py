"""The conversion service: the one code path behind the pixel and GraphQL.

`record_conversion` takes a report as received, validates it, and, in its
worker's next group commit (models/store/group_commit.py), stores the conversion,
advances the click's stage and flags the click's first deposit. It never raises
for an expected situation: it returns an outcome value (models/conversions/outcomes.py)
that each face maps to its own answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from datetime import UTC, datetime

from models.clicks import queries as clicks
from models.conversions.batch import Report, fire_terms, owner_of
from models.conversions.input import ConversionInput, RawConversion, parse_conversion
from models.conversions.outcomes import ClickNotFound, Invalid, Outcome, SignatureRefused
from models.conversions.records import ConversionRecord
from models.conversions.signatures import PixelFire, verify_fire
from models.errors import FieldError, InvalidInputError
from models.metadata import RequestMetadata
from models.partners.access import EVERYTHING, Access
from models.store.batch_sql import read_click_state
from models.store.tables import Source
from models.writes import store_report


async def record_conversion(
    raw: RawConversion,
    *,
    source: Source,
    metadata: RequestMetadata | None = None,
    received_at: datetime | None = None,
    fire: PixelFire | None = None,
    access: Access = EVERYTHING,
    visible_clicks: Container[uuid.UUID] | None = None,
) -> Outcome:
    """Record a report: a pixel `fire` is held to its click's fire terms; without one
    the caller vouches for the report (an API key) and it is recorded as verified.

    `access` is the caller's: the operator's own view by default (the pixel is public
    and checks only that a click exists), an API key's for GraphQL. A partner's key
    records only on its partner's clicks: on any other the outcome is ClickNotFound,
    exactly as for an id that names no click, and only once the input is valid, as
    that one's would be. `visible_clicks`: the clicks `access` sees, when a bulk caller
    looked them up once for all its reports (models/conversions/bulk.py)."""
    received_at = received_at or datetime.now(UTC)
    try:
        conversion = parse_conversion(raw, received_at=received_at)
    except InvalidInputError as invalid:
        if fire is None:
            return Invalid(invalid.errors)
        return await judge_invalid_fire(raw, fire, invalid.errors, now=received_at)
    if not access.is_everything:
        if visible_clicks is None:
            visible_clicks = await clicks.READS.by_ids(access, [conversion.click_id])
        if conversion.click_id not in visible_clicks:
            return ClickNotFound(conversion.click_id)
    return await store_report(new_report(conversion, source=source, metadata=metadata, fire=fire))


def new_report(
    conversion: ConversionInput,
    *,
    source: Source,
    metadata: RequestMetadata | None = None,
    fire: PixelFire | None = None,
) -> Report:
    """A validated conversion and the record it would store; verified unless a pixel
    `fire` must prove itself in its batch."""
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
        verified=fire is None,
    )
    return Report(conversion, record, fire)


async def judge_invalid_fire(
    raw: RawConversion, fire: PixelFire, errors: list[FieldError], *, now: datetime
) -> SignatureRefused | Invalid:
    """An invalid fire's answer. Its signature is checked first, as a valid fire's is
    in its batch, so an unauthentic fire learns nothing of its click but that it exists."""
    try:
        click_id = uuid.UUID(raw.click_id)
    except ValueError:
        return Invalid(errors)  # no click to hold it to: the field errors say why
    click = await read_click_state(click_id)
    if click is None:
        return Invalid(errors)
    verdict = verify_fire(fire_terms(click, fire, now=now), fire.signature, click_id, raw.type)
    owner = owner_of(click)
    if isinstance(verdict, SignatureRefused):
        return SignatureRefused(verdict.error, owner)
    return Invalid(errors, owner)
