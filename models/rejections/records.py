"""A rejected fire as stored, as every layer above the store sees it.

No `from __future__ import annotations`: GraphQL's type is built on this record and
reads its annotations as real types.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from models.errors import FieldError
from models.paging import Cursor


@dataclass(kw_only=True)
class FireRejectionRecord:
    """Its fields are the fire_rejection table's columns (models/store/rows.py maps
    them); GraphQL's `FireRejection` is built on it (schema/rejections.py)."""

    CURSOR_KIND: ClassVar[str] = "fire_rejection"

    id: uuid.UUID
    at: datetime
    # The HTTP status of the answer: 401, 404, 409 or 422.
    status: int
    # As the pixel answered them, fields spelled as its parameters.
    errors: list[FieldError]
    click_id: uuid.UUID | None
    offer_id: uuid.UUID | None
    partner_id: uuid.UUID | None
    # The parameters as received, every `sig` taken out, at most MAX_QUERY_LENGTH.
    query: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.id)
