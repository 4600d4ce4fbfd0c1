"""Partners: the affiliates that publish tracking links and may hold their own API keys."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from models.errors import InvalidInputError, text_errors
from models.paging import Cursor
from models.store.reads import TableReads
from models.store.tables import MAX_ID_LENGTH, Partner


@dataclass(kw_only=True)
class PartnerRecord:
    CURSOR_KIND: ClassVar[str] = "partner"

    id: uuid.UUID
    name: str
    created_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(Partner, PartnerRecord, Partner.created_at)


async def create_partner(name: str) -> PartnerRecord:
    """Store a partner; raise InvalidInputError naming every bad field."""
    name = name.strip()
    errors = text_errors("name", name, max_length=MAX_ID_LENGTH, required=True)
    if errors:
        raise InvalidInputError(errors)
    partner = Partner(name=name, created_at=datetime.now(UTC))
    await partner.save()
    return READS.mapping.record(partner.to_dict())
