"""What recording a conversion can come to: values each face maps to its own answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.conversion_input import FieldError
from models.tables import ConversionType, Currency, Source


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
