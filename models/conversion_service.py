"""The conversion service: the one code path behind the pixel and GraphQL.

`record_conversion` takes a report as received, validates it, and in one
transaction stores the conversion, advances the click's stage and flags the
click's first deposit. It never raises for an expected situation: it returns
an outcome value that each face maps to its own answer.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from piccolo.query.methods.insert import OnConflictAction

from models.conversion_input import (
    ConversionInput,
    FieldError,
    InvalidConversionError,
    RawConversion,
    check_not_before_click,
    parse_conversion,
)
from models.database import is_store_unavailable, locking_rows, write_transaction
from models.tables import Click, Conversion, ConversionType, Currency, Source, Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RequestMetadata:
    """What a browser fire tells us beyond its parameters."""

    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConversionRecord:
    """A stored conversion, or with `test=true` the one that would have been stored."""

    id: uuid.UUID
    click_id: uuid.UUID
    type: ConversionType
    occurred_at: datetime
    received_at: datetime
    player_id: str | None
    transaction_id: str | None
    currency: Currency | None
    amount_minor: int | None
    is_first_deposit: bool
    source: Source
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ConversionRecord:
        return cls(
            id=row["id"],
            click_id=row["click"],
            type=ConversionType(row["type"]),
            occurred_at=row["occurred_at"],
            received_at=row["received_at"],
            player_id=row["player_id"],
            transaction_id=row["transaction_id"],
            currency=Currency(row["currency"]) if row["currency"] else None,
            amount_minor=row["amount_minor"],
            is_first_deposit=bool(row["is_first_deposit"]),
            source=Source(row["source"]),
            ip=row["ip"],
            user_agent=row["user_agent"],
            referrer=row["referrer"],
            country=row["country"],
            browser_family=row["browser_family"],
            os_family=row["os_family"],
            device_family=row["device_family"],
        )

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "click": self.click_id,
            "type": self.type.value,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "player_id": self.player_id,
            "transaction_id": self.transaction_id,
            "currency": self.currency.value if self.currency else None,
            "amount_minor": self.amount_minor,
            "is_first_deposit": self.is_first_deposit,
            "source": self.source.value,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "referrer": self.referrer,
            "country": self.country,
            "browser_family": self.browser_family,
            "os_family": self.os_family,
            "device_family": self.device_family,
        }


@dataclass(frozen=True)
class Recorded:
    conversion: ConversionRecord
    test: bool = False


@dataclass(frozen=True)
class Duplicate:
    """An exact repeat of a stored conversion: nothing new was stored."""

    conversion: ConversionRecord


@dataclass(frozen=True)
class Conflict:
    """A deposit reused a transaction id with another amount or currency."""

    conversion: ConversionRecord
    message: str


@dataclass(frozen=True)
class ClickNotFound:
    click_id: uuid.UUID


@dataclass(frozen=True)
class Invalid:
    errors: list[FieldError]


@dataclass(frozen=True)
class StoreUnavailable:
    reason: str


Outcome = Recorded | Duplicate | Conflict | ClickNotFound | Invalid | StoreUnavailable


class _RollBack(Exception):
    """Raised at the end of a `test=true` transaction to undo its writes."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


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
    try:
        async with write_transaction(Conversion._meta.db):
            outcome = await _record_in_transaction(conversion, record)
            if conversion.test:
                # The whole path ran, writes included; undo them so a test stores nothing.
                raise _RollBack(outcome)
            return outcome
    except _RollBack as rolled_back:
        return rolled_back.outcome
    except InvalidConversionError as invalid:
        return Invalid(invalid.errors)
    except Exception as error:
        if is_store_unavailable(error):
            logger.warning("store unavailable while recording a conversion: %r", error)
            return StoreUnavailable(reason=type(error).__name__)
        raise


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
        ip=metadata.ip,
        user_agent=metadata.user_agent,
        referrer=metadata.referrer,
        country=metadata.country,
        browser_family=metadata.browser_family,
        os_family=metadata.os_family,
        device_family=metadata.device_family,
    )


async def _record_in_transaction(conversion: ConversionInput, record: ConversionRecord) -> Outcome:
    # Locking the click serialises reports on one click, which keeps the
    # first-deposit flag and the stage right when deposits race.
    click = await locking_rows(
        Click.select(Click.created_at, Click.stage, Click.player_id)
        .where(Click.id == conversion.click_id)
        .first()
    )
    if click is None:
        return ClickNotFound(conversion.click_id)
    check_not_before_click(conversion, click["created_at"])

    if conversion.type is ConversionType.DEPOSIT:
        has_deposit = await Conversion.exists().where(
            (Conversion.click == conversion.click_id)
            & (Conversion.type == ConversionType.DEPOSIT.value)
        )
        record = replace(record, is_first_deposit=not has_deposit)

    inserted = (
        await Conversion.insert(Conversion(**record.as_row()))
        .on_conflict(action=OnConflictAction.do_nothing)
        .returning(Conversion.id)
    )
    if not inserted:
        return await _classify_repeat(conversion)

    await _advance_click(conversion, click["stage"], click["player_id"])
    return Recorded(record, test=conversion.test)


async def _classify_repeat(conversion: ConversionInput) -> Outcome:
    """The insert hit a deduplication index: an exact repeat, or a conflicting deposit."""
    same_event = (Conversion.click == conversion.click_id) & (
        Conversion.type == conversion.type.value
    )
    if conversion.type is ConversionType.DEPOSIT:
        same_event &= Conversion.transaction_id == conversion.transaction_id
    existing = ConversionRecord.from_row(await Conversion.select().where(same_event).first())
    if conversion.type is ConversionType.DEPOSIT and (
        existing.amount_minor != conversion.amount_minor or existing.currency != conversion.currency
    ):
        return Conflict(
            existing,
            message=(
                f"transaction_id {conversion.transaction_id!r} was already recorded on this "
                "click with a different amount or currency"
            ),
        )
    return Duplicate(existing)


async def _advance_click(
    conversion: ConversionInput, stage_value: int, player_id: str | None
) -> None:
    """Move the click's stage forward (never back) and learn its player id."""
    changes: dict[Any, Any] = {}
    reached = Stage.reached_by(conversion.type)
    if reached > stage_value:
        changes[Click.stage] = reached.value
    if player_id is None and conversion.player_id is not None:
        changes[Click.player_id] = conversion.player_id
    if changes:
        await Click.update(changes).where(Click.id == conversion.click_id)
