"""Reading conversions: `READS` (by id, keyset pages, a click's pages, counts) and the
filter for pages."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.conversions.records import ConversionRecord
from models.filters import Conditions
from models.paging import Cursor, Page
from models.partners.access import Access
from models.store.reads import TableReads
from models.store.tables import Conversion, ConversionType, Currency

READS = TableReads(Conversion, ConversionRecord, Conversion.occurred_at)


@dataclass(kw_only=True)
class ConversionFilter:
    """Every given field must match; `occurred_from` is inclusive, `occurred_to` exclusive."""

    click_id: uuid.UUID | None = None
    player_id: str | None = None
    transaction_id: str | None = None
    type: ConversionType | None = None
    currency: Currency | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def conditions(self) -> list[Any]:
        """Raises InvalidInputError naming every value no query can take."""
        conditions = Conditions()
        if self.click_id is not None:
            conditions.add(Conversion.click == self.click_id)
        conditions.equals(Conversion.player_id, "player_id", self.player_id)
        conditions.equals(Conversion.transaction_id, "transaction_id", self.transaction_id)
        if self.type is not None:
            conditions.add(Conversion.type == self.type.value)
        if self.currency is not None:
            conditions.add(Conversion.currency == self.currency.value)
        conditions.at_or_after(Conversion.occurred_at, "occurred_from", self.occurred_from)
        conditions.before(Conversion.occurred_at, "occurred_to", self.occurred_to)
        return conditions.checked()


async def count_of_clicks(access: Access, click_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    return await READS.count_by(access, Conversion.click, click_ids)


async def pages_of_clicks(
    access: Access, click_ids: Sequence[uuid.UUID], first: int, after: Cursor | None = None
) -> dict[uuid.UUID, Page[ConversionRecord]]:
    """The same page of each click's conversions, in two statements for all of them."""
    return await READS.pages_by(access, Conversion.click, click_ids, first, after)
