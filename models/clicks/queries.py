"""Reading clicks: `READS` (by id, keyset pages, counts) and the filter for pages."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.clicks.records import SUB_ID_NAMES, ClickRecord, SubIds
from models.filters import Conditions
from models.store.reads import TableReads
from models.store.tables import Click, Stage

READS = TableReads(Click, ClickRecord, Click.created_at)


@dataclass(kw_only=True)
class ClickFilter(SubIds):
    """Every given field must match, each of s1 to s5 exactly; `created_from` is inclusive,
    `created_to` exclusive."""

    player_id: str | None = None
    stage: Stage | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    tracking_link_id: uuid.UUID | None = None
    country: str | None = None

    def conditions(self) -> list[Any]:
        """Raises InvalidInputError naming every value no query can take."""
        conditions = Conditions()
        conditions.equals(Click.player_id, "player_id", self.player_id)
        if self.stage is not None:
            conditions.add(Click.stage == self.stage.value)
        conditions.at_or_after(Click.created_at, "created_from", self.created_from)
        conditions.before(Click.created_at, "created_to", self.created_to)
        if self.tracking_link_id is not None:
            conditions.add(Click.tracking_link == self.tracking_link_id)
        # Stored upper-case, as ISO 3166-1 writes it; dashboards may send either case.
        country = None if self.country is None else self.country.upper()
        conditions.equals(Click.country, "country", country)
        for name in SUB_ID_NAMES:
            conditions.equals(getattr(Click, name), name, getattr(self, name))
        return conditions.checked()
