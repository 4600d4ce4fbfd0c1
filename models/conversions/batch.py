"""The rules of a batch of conversions: every report's outcome, in arrival order,
against its click and the stored events it may repeat.

The store (models/store/batch_sql.py) locks the batch's clicks, finds the stored
events, calls `resolve` here, and writes what it decides, all in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from models.conversions.input import ConversionInput, check_not_before_click
from models.conversions.outcomes import (
    ClickNotFound,
    ClickOwner,
    Conflict,
    Duplicate,
    Invalid,
    Outcome,
    Recorded,
    SignatureRefused,
)
from models.conversions.records import ConversionRecord
from models.conversions.signatures import FireTerms, PixelFire, verify_fire
from models.errors import FieldError, InvalidInputError
from models.store.batch_sql import Batch, ClickState, Resolution, Row
from models.store.batch_sql import write_batch as store_batch
from models.store.rows import RowMapping
from models.store.tables import Conversion, ConversionStatus, ConversionType, FirePolicy, Stage

ROWS = RowMapping(Conversion, ConversionRecord)
TRANSACTION_ID_REQUIRED = FieldError(
    "transaction_id",
    "required",
    "{transaction_id} is required on a signed deposit, so that a replay is only a repeat",
)

# The same event reported again: a click's install or registration, or a click's
# deposit with a given transaction id. Deposits without one have no key.
EventKey = tuple[uuid.UUID, ConversionType, str | None]


@dataclass(frozen=True, slots=True)
class Report:
    """A validated report and the record it would store; `fire` for a pixel fire, held
    to its click's fire terms, None for a report recorded with an API key."""

    conversion: ConversionInput
    record: ConversionRecord
    fire: PixelFire | None = None


def fire_terms(click: ClickState, fire: PixelFire, *, now: datetime) -> FireTerms:
    """The terms of the click's offer; the settings' for a click without a tracking link."""
    if click.fire_policy is None:
        return fire.default_terms
    return FireTerms.of_offer(
        FirePolicy(click.fire_policy),
        click.fire_secret,
        click.previous_fire_secret,
        click.previous_fire_secret_expires_at,
        now=now,
    )


def owner_of(click: ClickState) -> ClickOwner | None:
    """Whose fires on the click are: its tracking link's offer and partner."""
    if click.offer_id is None:
        return None
    return ClickOwner(click.offer_id, click.partner_id)


def event_key(conversion: ConversionInput) -> EventKey | None:
    if conversion.type is not ConversionType.DEPOSIT:
        return (conversion.click_id, conversion.type, None)
    if conversion.transaction_id is None:
        return None
    return (conversion.click_id, conversion.type, conversion.transaction_id)


async def write_batch(
    batch: list[Report], *, new_clicks: list[list[Any]], rejections: list[list[Any]]
) -> list[Outcome]:
    """Store a batch in one transaction, after `new_clicks` and `rejections` (rows in
    their tables' column order); every report's outcome, in order."""
    click_ids = sorted({report.conversion.click_id for report in batch})
    deposit_keys = sorted(
        {
            (report.conversion.click_id, report.conversion.transaction_id)
            for report in batch
            if report.conversion.type is ConversionType.DEPOSIT
            and report.conversion.transaction_id is not None
        }
    )
    resolution = await store_batch(
        Batch(new_clicks, click_ids, deposit_keys, rejections),
        partial(_resolve_batch, batch),
        # A test report writes nothing, so only a look-up can tell it is a repeat.
        look_up_repeats=any(report.conversion.test for report in batch),
    )
    return resolution.outcomes


def _stored_events(rows: Sequence[Row]) -> dict[EventKey, ConversionRecord]:
    events: dict[EventKey, ConversionRecord] = {}
    for row in rows:
        record = ROWS.record(row)
        transaction_id = record.transaction_id if record.type is ConversionType.DEPOSIT else None
        events[(record.click_id, record.type, transaction_id)] = record
    return events


def _resolve_batch(
    batch: list[Report], clicks: dict[uuid.UUID, ClickState], stored: Sequence[Row]
) -> Resolution[Outcome]:
    """Every report's outcome, in arrival order, against the locked clicks and the
    stored events they may repeat; and what the batch must write."""
    recorded = _stored_events(stored)
    # Only a deposit takes a click to the deposit stage, and stages never move back.
    deposited = {id_ for id_, state in clicks.items() if state.stage == Stage.DEPOSIT}
    outcomes: list[Outcome] = []
    new_rows = []
    for report in batch:
        outcome = _resolve(report, clicks, recorded, deposited)
        outcomes.append(outcome)
        if isinstance(outcome, Recorded) and not outcome.test:
            new_rows.append(ROWS.values(outcome.conversion))
    changed = {id_: state for id_, state in clicks.items() if state.changed}
    return Resolution(outcomes, new_rows, changed)


def _resolve(
    report: Report,
    clicks: dict[uuid.UUID, ClickState],
    recorded: dict[EventKey, ConversionRecord],
    deposited: set[uuid.UUID],
) -> Outcome:
    """One report's outcome against the store as the earlier reports of the batch left it."""
    conversion = report.conversion
    click = clicks.get(conversion.click_id)
    if click is None:
        return ClickNotFound(conversion.click_id)
    record = report.record
    # Whether the report may name the click's player: under a signing policy only a
    # verified one may, so an anonymous install cannot claim a click before its deposit.
    names_player = True
    if report.fire is not None:
        # Checked first: an unauthentic fire learns nothing else about the click.
        terms = fire_terms(click, report.fire, now=conversion.received_at)
        verdict = verify_fire(terms, report.fire.signature, conversion.click_id, conversion.type)
        if isinstance(verdict, SignatureRefused):
            return replace(verdict, owner=owner_of(click))
        names_player = verdict or terms.policy is FirePolicy.OPEN
        if verdict:
            record = replace(record, verified=True)
            if (
                terms.policy is not FirePolicy.OPEN
                and conversion.type is ConversionType.DEPOSIT
                and conversion.transaction_id is None
            ):
                # So that a replayed signed deposit can only ever be a repeat.
                return Invalid([TRANSACTION_ID_REQUIRED], owner_of(click))
    try:
        check_not_before_click(conversion, click.created_at)
    except InvalidInputError as invalid:
        return Invalid(invalid.errors, owner_of(click))

    key = event_key(conversion)
    if key is not None and key in recorded:
        existing = recorded[key]
        if conversion.type is ConversionType.DEPOSIT and (
            existing.amount_minor != conversion.amount_minor
            or existing.currency != conversion.currency
        ):
            return Conflict(
                existing,
                message=(
                    f"transaction_id {conversion.transaction_id!r} was already recorded on "
                    "this click with a different amount or currency"
                ),
                owner=owner_of(click),
            )
        return Duplicate(existing)

    is_deposit = conversion.type is ConversionType.DEPOSIT
    # The offer's holdDeposits as this batch finds it: a change applies to the next deposit.
    is_first = is_deposit and conversion.click_id not in deposited
    if is_first or (is_deposit and click.hold_deposits):
        record = replace(
            record,
            is_first_deposit=is_first,
            status=ConversionStatus.PENDING if click.hold_deposits else record.status,
        )
    if conversion.test:
        # Processed like any other, but leaves nothing behind for the reports after it.
        return Recorded(record, test=True)
    if key is not None:
        recorded[key] = record
    if is_deposit:
        deposited.add(conversion.click_id)
    reached = Stage.reached_by(conversion.type)
    if reached > click.stage:
        click.stage, click.changed = reached.value, True
    if names_player and click.player_id is None and conversion.player_id is not None:
        click.player_id, click.changed = conversion.player_id, True
    return Recorded(record)
