"""The stored click, as every layer above the store sees it."""

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import ClassVar

from models.paging import Cursor
from models.store.tables import MarketingType, Stage


@dataclass(kw_only=True)
class SubIds:
    """A partner's sub ids, as its tracking link received them: one column each."""

    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    s4: str | None = None
    s5: str | None = None


SUB_ID_NAMES = tuple(field.name for field in fields(SubIds))


@dataclass(kw_only=True)
class ClickRecord:
    """Its fields are the click table's columns (models/store/rows.py maps them);
    GraphQL's `Click` type is built on it (schema/clicks.py)."""

    CURSOR_KIND: ClassVar[str] = "click"

    id: uuid.UUID
    created_at: datetime
    stage: Stage
    player_id: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    # None for clicks created through GraphQL rather than a tracking link.
    tracking_link_id: uuid.UUID | None
    type: MarketingType | None
    sub_ids: SubIds
    browser_family: str | None
    os_family: str | None
    device_family: str | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)
