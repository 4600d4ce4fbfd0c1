"""Records and rows: one declaration per column, checked against the table."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from models.clicks.records import ClickRecord, SubIds
from models.store.rows import RowMapping
from models.store.tables import Click, MarketingType, Stage


def test_a_record_that_does_not_match_its_table_is_refused() -> None:
    @dataclasses.dataclass(kw_only=True)
    class Partial:
        id: uuid.UUID

    with pytest.raises(TypeError, match="columns without a field"):
        RowMapping(Click, Partial)


def test_a_click_round_trips_through_its_row() -> None:
    mapping = RowMapping(Click, ClickRecord)
    record = ClickRecord(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        stage=Stage.DEPOSIT,
        player_id="p-1",
        ip=None,
        user_agent=None,
        referrer=None,
        country="DE",
        tracking_link_id=uuid.uuid4(),
        type=MarketingType.SEO,
        sub_ids=SubIds(s1="a", s5="e"),
        browser_family=None,
        os_family=None,
        device_family=None,
    )
    row = mapping.row(record)
    # Foreign keys by their column's name, enums by value, sub ids one column each.
    assert row["tracking_link"] == record.tracking_link_id
    assert (row["stage"], row["type"], row["s1"], row["s2"]) == (3, "seo", "a", None)
    assert mapping.record(row) == record
