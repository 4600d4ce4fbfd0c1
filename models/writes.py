"""The worker's group commit: clicks and conversions, written together.

Every write that must be fast and durable joins one queue per worker
(models/store/group_commit.py): a tracking link's click and a pixel fire's
conversion alike wait for the same batch's commit, so a click id handed to a
player always names a stored click, and a conversion fired a millisecond later,
even in the same batch, finds it. New clicks are written first in the batch's
transaction; the conversions' rules then run as models/conversions/batch.py says.
Rejected fires (models/rejections/) ride the same batches, but nobody waits for them.
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
from models.rejections.records import FireRejectionRecord
from models.store.group_commit import GroupCommitter, PerEventLoop
from models.store.rows import RowMapping
from models.store.tables import FireRejection

REJECTION_ROWS = RowMapping(FireRejection, FireRejectionRecord)


@dataclass(frozen=True, slots=True)
class ClickWrite:
    """A validated click to store."""

    record: ClickRecord


@dataclass(frozen=True, slots=True)
class ClickStored:
    click_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RejectionWrite:
    """A rejected fire to log."""

    record: FireRejectionRecord


@dataclass(frozen=True, slots=True)
class RejectionStored:
    pass


Write = Report | ClickWrite | RejectionWrite
WriteOutcome = Outcome | ClickStored | RejectionStored


def _stored(write: ClickWrite | RejectionWrite) -> ClickStored | RejectionStored:
    if isinstance(write, ClickWrite):
        return ClickStored(write.record.id)
    return RejectionStored()


async def write_batch(batch: list[Write]) -> list[WriteOutcome]:
    """One transaction for the batch's clicks, reports and rejected fires; every write's
    outcome, in order."""
    clicks = [write for write in batch if isinstance(write, ClickWrite)]
    reports = [write for write in batch if isinstance(write, Report)]
    new_clicks = [CLICK_READS.mapping.values(click.record) for click in clicks]
    rejections = [
        REJECTION_ROWS.values(write.record) for write in batch if isinstance(write, RejectionWrite)
    ]
    report_outcomes = iter(
        await write_reports(reports, new_clicks=new_clicks, rejections=rejections)
    )
    return [
        next(report_outcomes) if isinstance(write, Report) else _stored(write) for write in batch
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
    assert not isinstance(outcome, ClickStored | RejectionStored)
    return outcome


def queue_rejection(record: FireRejectionRecord) -> None:
    """Log a rejected fire in this worker's next batch, without waiting for its commit:
    the log is for debugging, not a promise, and the fire's answer does not depend on it."""
    committer().enqueue(RejectionWrite(record))
