"""Creating clicks. The tracking link and GraphQL's createClick both come through here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from models.tables import Click


@dataclass(frozen=True, kw_only=True)
class NewClick:
    player_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    created_at: datetime | None = None


async def create_click(new_click: NewClick) -> uuid.UUID:
    click = Click(
        created_at=new_click.created_at or datetime.now(UTC),
        player_id=new_click.player_id,
        ip=new_click.ip,
        user_agent=new_click.user_agent,
        referrer=new_click.referrer,
        country=new_click.country,
    )
    await click.save()
    return click.id
