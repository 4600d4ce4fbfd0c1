"""Reading rejected fires: `READS` (keyset pages, newest first, counts) and the filter."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.filters import Conditions
from models.rejections.records import FireRejectionRecord
from models.store.reads import TableReads
from models.store.tables import FireRejection

READS = TableReads(FireRejection, FireRejectionRecord, FireRejection.at)


@dataclass(kw_only=True)
class FireRejectionFilter:
    """Every given field must match; `at_from` is inclusive, `at_to` exclusive."""

    click_id: uuid.UUID | None = None
    offer_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None

    def conditions(self) -> list[Any]:
        """Raises InvalidInputError naming every value no query can take."""
        conditions = Conditions()
        if self.click_id is not None:
            conditions.add(FireRejection.click_id == self.click_id)
        if self.offer_id is not None:
            conditions.add(FireRejection.offer == self.offer_id)
        if self.partner_id is not None:
            conditions.add(FireRejection.partner == self.partner_id)
        conditions.at_or_after(FireRejection.at, "from", self.at_from)
        conditions.before(FireRejection.at, "to", self.at_to)
        return conditions.checked()
