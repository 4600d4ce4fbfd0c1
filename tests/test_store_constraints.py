"""The rules racing requests must not break are the database's, not only the code's."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from piccolo.engine.base import Engine

from models.store.engine import is_postgres
from models.store.tables import Conversion, ConversionType, Source
from tests.support import new_click

UNIQUE_VIOLATIONS = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)


async def insert(click_id: uuid.UUID, kind: ConversionType, transaction_id: str | None = None):
    now = datetime.now(UTC)
    await Conversion.insert(
        Conversion(
            click=click_id,
            type=kind.value,
            occurred_at=now,
            received_at=now,
            transaction_id=transaction_id,
            source=Source.PIXEL.value,
        )
    )


@pytest.mark.parametrize("kind", [ConversionType.INSTALL, ConversionType.REGISTRATION])
async def test_one_install_and_one_registration_per_click(db: Engine, kind: ConversionType) -> None:
    click_id = await new_click()
    await insert(click_id, kind)
    with pytest.raises(UNIQUE_VIOLATIONS):
        await insert(click_id, kind)
    await insert(await new_click(), kind)


async def test_one_deposit_per_click_and_transaction_id(db: Engine) -> None:
    click_id = await new_click()
    await insert(click_id, ConversionType.DEPOSIT, "tx-1")
    with pytest.raises(UNIQUE_VIOLATIONS):
        await insert(click_id, ConversionType.DEPOSIT, "tx-1")
    await insert(click_id, ConversionType.DEPOSIT, "tx-2")
    await insert(await new_click(), ConversionType.DEPOSIT, "tx-1")
    # Deposits without a transaction id cannot be told apart, so each one is kept.
    await insert(click_id, ConversionType.DEPOSIT)
    await insert(click_id, ConversionType.DEPOSIT)
    assert await Conversion.count() == 5


async def test_sqlite_runs_in_wal_mode(db: Engine) -> None:
    if is_postgres(db):
        pytest.skip("WAL is SQLite's journal mode")
    [row] = await Conversion.raw("PRAGMA journal_mode")
    assert row["journal_mode"] == "wal"
