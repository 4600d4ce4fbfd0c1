"""The worker's group commit: clicks and conversions, written together.

Every write that must be fast and durable joins one queue per worker
(models/store/group_commit.py): a tracking link's click and a pixel fire's
conversion alike wait for the same batch's commit, so a click id handed to a
player always names a stored click, and a conversion fired a millisecond later,
even in the same batch, finds it. New clicks are written first in the batch's
transaction; the conversions' rules then run as models/conversions/batch.py says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from models.clicks.queries import READS as CLICK_READS
from models.clicks.records import ClickRecord
from models.conversions.batch import Report
from models.conversions.batch import write_batch as write_reports
from models.conversions.outcomes import Outcome
from models.errors import StoreUnavailable
from models.store.group_commit import GroupCommitter, PerEventLoop


@dataclass(frozen=True, slots=True)
class ClickWrite:
    """A validated click to store."""

    record: ClickRecord


@dataclass(frozen=True, slots=True)
class ClickStored:
    click_id: uuid.UUID


Write = Report | ClickWrite
WriteOutcome = Outcome | ClickStored


async def write_batch(batch: list[Write]) -> list[WriteOutcome]:
    """One transaction for the batch's clicks and reports; every write's outcome, in order."""
    clicks = [write for write in batch if isinstance(write, ClickWrite)]
    reports = [write for write in batch if isinstance(write, Report)]
    new_clicks = [CLICK_READS.mapping.values(click.record) for click in clicks]
    report_outcomes = iter(await write_reports(reports, new_clicks=new_clicks))
    return [
        ClickStored(write.record.id) if isinstance(write, ClickWrite) else next(report_outcomes)
        for write in batch
    ]


committer = PerEventLoop[Write, WriteOutcome](
    lambda: GroupCommitter(write_batch, unavailable=StoreUnavailable)
)


async def store_click(record: ClickRecord) -> ClickStored | StoreUnavailable:
    """Store a validated click in this worker's next batch; answered once it commits."""
    outcome = await committer().submit(ClickWrite(record))
    assert isinstance(outcome, ClickStored | StoreUnavailable)
    return outcome


async def store_report(report: Report) -> Outcome:
    """Record a validated report in this worker's next batch; answered once it commits."""
    outcome = await committer().submit(report)
    assert not isinstance(outcome, ClickStored)
    return outcome
