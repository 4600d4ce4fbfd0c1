"""Small helpers shared by the database tests."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.table import Table

from api.settings import Settings
from models.clicks.service import NewClick, create_click
from models.conversions.batch import Report
from models.conversions.input import RawConversion, parse_conversion
from models.conversions.service import new_report
from models.partners.partners import create_partner
from models.store.engine import is_postgres
from models.store.tables import TABLES, Click, Conversion, FireRejection, Source
from models.tracking.links import TrackingLinkRecord, create_tracking_link


async def new_click(*, age: timedelta = timedelta(hours=1), **fields: Any) -> uuid.UUID:
    """A stored click, created `age` ago (old enough for any time the tests report)."""
    return await create_click(NewClick(created_at=datetime.now(UTC) - age, **fields))


async def new_link(
    offer_id: uuid.UUID, partner_name: str = "partner", creative: str | None = None
) -> TrackingLinkRecord:
    """A tracking link to the offer, for a new partner of that name."""
    partner = await create_partner(partner_name)
    return await create_tracking_link(offer_id, partner.id, creative)


def validated_report(
    click_id: uuid.UUID, conversion_type: str = "install", transaction_id: str | None = None
) -> Report:
    """A report past validation, recorded with an API key: for driving the group commit."""
    raw = RawConversion(click_id=str(click_id), type=conversion_type, transaction_id=transaction_id)
    conversion = parse_conversion(raw, received_at=datetime.now(UTC))
    return new_report(conversion, source=Source.GRAPHQL)


async def stored_conversions(click_id: uuid.UUID) -> list[dict[str, Any]]:
    return await Conversion.select().where(Conversion.click == click_id).order_by(Conversion.id)


async def stored_click(click_id: uuid.UUID) -> dict[str, Any]:
    click = await Click.select().where(Click.id == click_id).first()
    assert click is not None
    return click


async def logged_rejections(count: int) -> list[dict[str, Any]]:
    """The stored rejected fires, oldest first, once `count` of them are there: the pixel
    queues them for its next batch and answers without waiting."""
    rows: list[dict[str, Any]] = []
    for _ in range(500):
        rows = await FireRejection.select().order_by(FireRejection.at)
        if len(rows) >= count:
            break
        await asyncio.sleep(0.01)
    assert len(rows) == count, rows
    return rows


async def count_conversions() -> int:
    return await Conversion.count()


@contextmanager
def tables_bound_to(engine: Engine, *tables: type[Table]) -> Iterator[None]:
    """Point the tables (all, by default) at another engine, as if the store had moved."""
    moved = tables or TABLES
    original = {table: table._meta.db for table in moved}
    for table in moved:
        table._meta.db = engine
    try:
        yield
    finally:
        for table, db in original.items():
            table._meta.db = db


def unreachable_engine(store: Engine, tmp_path: Path) -> Engine:
    """An engine of the same kind as `store` whose every connection attempt fails."""
    if is_postgres(store):
        with warnings.catch_warnings():
            # Piccolo asks the server for its version on construction and warns when it cannot.
            warnings.simplefilter("ignore")
            # Nothing listens on port 1: every connection is refused.
            return Settings(
                database_url="postgresql://postgres@127.0.0.1:1/nowhere"
            ).create_engine()
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"
    return Settings(database_url=url).create_engine()
