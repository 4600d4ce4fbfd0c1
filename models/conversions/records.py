"""The stored conversion, as every layer above the store sees it.

No `from __future__ import annotations` in the modules of records and filters:
GraphQL types built on them read their annotations as real types.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from models.paging import Cursor
from models.store.tables import ConversionStatus, ConversionType, Currency, Source


@dataclass(kw_only=True)
class ConversionRecord:
    """A stored conversion, or with `test=true` the one that would have been stored.

    Its fields are the conversion table's columns (models/store/rows.py maps them);
    GraphQL's `Conversion` type is built on it (schema/conversions.py).
    """

    CURSOR_KIND: ClassVar[str] = "conversion"

    id: uuid.UUID
    click_id: uuid.UUID
    type: ConversionType
    occurred_at: datetime
    received_at: datetime
    player_id: str | None
    transaction_id: str | None
    currency: Currency | None
    # Money is kept exactly, as integer minor units (cents); never a float.
    amount_minor: int | None
    is_first_deposit: bool
    source: Source
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    browser_family: str | None
    os_family: str | None
    device_family: str | None
    # A valid signature came with it, or an API key recorded it.
    verified: bool
    # A new conversion is approved, unless its batch finds a deposit its offer holds.
    status: ConversionStatus = ConversionStatus.APPROVED

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.occurred_at, self.id)
