"""Small helpers shared by the database tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from models.clicks import NewClick, create_click
from models.tables import Click, Conversion


async def new_click(*, age: timedelta = timedelta(hours=1), **fields: Any) -> uuid.UUID:
    """A stored click, created `age` ago (old enough for any time the tests report)."""
    return await create_click(NewClick(created_at=datetime.now(UTC) - age, **fields))


async def stored_conversions(click_id: uuid.UUID) -> list[dict[str, Any]]:
    return await Conversion.select().where(Conversion.click == click_id).order_by(Conversion.id)


async def stored_click(click_id: uuid.UUID) -> dict[str, Any]:
    click = await Click.select().where(Click.id == click_id).first()
    assert click is not None
    return click


async def count_conversions() -> int:
    return await Conversion.count()
