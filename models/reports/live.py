"""The live feed: every conversion stored by any worker, to every matching subscriber
of this worker, once.

Each worker process runs one `LiveFeed` (per event loop) while it has subscribers. Its
source (models/store/notifications.py) hands it the ids of the conversions each commit
stored; the feed puts them in every subscription's queue and forgets them. Each
subscription reads its conversions itself, through the same reads, filter conditions
and `Access` as the `conversions` list, so a partner's key receives only its own; ids
that queued while a subscription was reading are read together the next time.

A subscription's queue is bounded: handing ids on never waits, so a slow subscriber
never slows a commit (or the pixel behind it). One that lets more than its bound pile
up is ended with `SubscriberFellBehindError`, and its `on_fell_behind` is called at
once so its face can close the connection even while a send to it is stuck.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from models.conversions.queries import READS
from models.conversions.records import ConversionRecord
from models.observers import observer
from models.partners.access import Access
from models.store.engine import current_engine
from models.store.notifications import ConversionNotices, conversion_notices
from models.store.tables import Conversion

# The ids a feed remembers having delivered, so that a source's look-up of what it may
# have missed (after a reconnect) delivers nothing twice.
REMEMBERED_IDS = 50_000
# The most ids one subscription reads in one statement.
READ_BATCH = 500

Condition = Any  # a Piccolo `Where` or combination of them


class SubscriberFellBehindError(Exception):
    """More conversions waited for a subscription than its queue may hold."""


class LiveSubscription:
    """One subscriber's conversions, in commit order, as an async iterator."""

    def __init__(
        self,
        access: Access,
        conditions: Sequence[Condition],
        queue_size: int,
        on_fell_behind: Callable[[str], None],
    ) -> None:
        self._access = access
        self._conditions = list(conditions)
        self._queue_size = queue_size
        self._on_fell_behind = on_fell_behind
        self._waiting: list[uuid.UUID] = []
        # Conversions read for this subscriber and not yet sent: they count against the
        # bound as much as the waiting ids.
        self._sending = 0
        self._arrived = asyncio.Event()
        self.fell_behind: str | None = None
        self.started_at = datetime.now(UTC)

    def hand(self, ids: list[uuid.UUID], received: list[datetime] | None = None) -> None:
        """Queue `ids`, never waiting; past the bound, end the subscription. Ids found
        by a look-up after a reconnect (`received` given) count only from the time this
        subscription started: it sends what is stored from then on."""
        if self.fell_behind is not None:
            return
        if received is not None:
            ids = [id_ for id_, at in zip(ids, received, strict=True) if at >= self.started_at]
        if len(self._waiting) + self._sending + len(ids) > self._queue_size:
            self.fell_behind = (
                f"this subscriber fell behind: more than {self._queue_size} conversions "
                "waited to be sent; subscribe again"
            )
            self._waiting.clear()
            self._arrived.set()
            self._on_fell_behind(self.fell_behind)
            return
        self._waiting.extend(ids)
        self._arrived.set()

    async def __aiter__(self) -> AsyncIterator[ConversionRecord]:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting:
                if self.fell_behind is not None:
                    break
                ids, self._waiting = self._waiting[:READ_BATCH], self._waiting[READ_BATCH:]
                self._sending = len(ids)
                records = await self._read(ids)
                self._sending = len(records)
                for record in records:
                    if self.fell_behind is not None:
                        break
                    yield record
                    self._sending -= 1
            if self.fell_behind is not None:
                raise SubscriberFellBehindError(self.fell_behind)

    async def _read(self, ids: list[uuid.UUID]) -> list[ConversionRecord]:
        """The conversions of `ids` this subscription's filter and access keep, in the
        order they were stored."""
        page = await READS.page(
            self._access, [*self._conditions, Conversion.id.is_in(ids)], first=len(ids)
        )
        found = {record.id: record for record in page.rows}
        return [found[id_] for id_ in ids if id_ in found]


class LiveFeed:
    """One worker's subscriptions and the source that feeds them, started with the first
    subscription and stopped with the last."""

    def __init__(self) -> None:
        self._subscriptions: set[LiveSubscription] = set()
        self._source: ConversionNotices | None = None
        self._starting = asyncio.Lock()
        self._delivered: OrderedDict[uuid.UUID, None] = OrderedDict()

    @property
    def open_subscriptions(self) -> int:
        return len(self._subscriptions)

    @property
    def source(self) -> ConversionNotices | None:
        return self._source

    @asynccontextmanager
    async def subscribe(
        self,
        access: Access,
        conditions: Sequence[Condition],
        *,
        queue_size: int,
        on_fell_behind: Callable[[str], None],
    ) -> AsyncIterator[LiveSubscription]:
        """A subscription to every conversion committed once this returns; raises what
        the store raises when the source cannot start."""
        subscription = LiveSubscription(access, conditions, queue_size, on_fell_behind)
        async with self._starting:
            if self._source is None:
                source = conversion_notices(current_engine(), self._deliver)
                await source.start()
                self._source = source
            self._subscriptions.add(subscription)
        observer().subscriptions_changed(1)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            observer().subscriptions_changed(-1)
            async with self._starting:
                if not self._subscriptions and self._source is not None:
                    source, self._source = self._source, None
                    self._delivered.clear()
                    await source.stop()

    def _deliver(self, ids: list[uuid.UUID], received: list[datetime] | None) -> None:
        new = [position for position, id_ in enumerate(ids) if id_ not in self._delivered]
        if not new:
            return
        new_ids = [ids[position] for position in new]
        new_received = None if received is None else [received[position] for position in new]
        for id_ in new_ids:
            self._delivered[id_] = None
        while len(self._delivered) > REMEMBERED_IDS:
            self._delivered.popitem(last=False)
        for subscription in list(self._subscriptions):
            subscription.hand(new_ids, new_received)


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveFeed] = weakref.WeakKeyDictionary()


def live_feed() -> LiveFeed:
    """This worker's feed (one per running event loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _feeds:
        _feeds[loop] = LiveFeed()
    return _feeds[loop]


def open_subscriptions() -> int:
    """How many `conversionRecorded` subscriptions this worker process holds open: the
    hook for the open-subscriptions metric."""
    return sum(feed.open_subscriptions for feed in list(_feeds.values()))
