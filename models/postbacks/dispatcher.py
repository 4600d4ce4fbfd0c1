"""The dispatcher: every worker runs one, sending due deliveries from the outbox.

Each round claims a few due deliveries for a lease (models/store/outbox_sql.py says
how each engine keeps a claim to one dispatcher), sends them at once, and stores each
attempt's result under the same claim. A worker that dies mid-send leaves its claims
to run out; the deliveries are then due again, so each is sent at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from models.observers import observer
from models.postbacks.macros import SUB_IDS, MacroValues, render
from models.postbacks.outbox import STATUS_EVENTS
from models.postbacks.sending import (
    BLOCKED_ADDRESS,
    INVALID_URL,
    SendPolicy,
    Sent,
    new_client,
    send,
)
from models.store import outbox_sql
from models.store.engine import is_store_unavailable
from models.store.tables import DeliveryStatus, PostbackEvent

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(hours=1)
# A rule whose last this many finished deliveries all failed is disabled.
RULE_FAILURE_LIMIT = 10
DISABLED_REASON = f"its last {RULE_FAILURE_LIMIT} deliveries all failed"


@dataclass(frozen=True, kw_only=True)
class DispatchPolicy:
    """The POSTBACK_* settings (api/settings.py)."""

    send: SendPolicy = field(default_factory=SendPolicy)
    retry_base_seconds: float = 30.0
    max_attempts: int = 10
    poll_seconds: float = 1.0
    # Deliveries one round claims and sends at once.
    batch_size: int = 20
    # Longer than any send, so a live dispatcher's claim never runs out under it.
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class Verdict:
    status: DeliveryStatus
    next_attempt_at: datetime
    error: str | None


def judge(sent: Sent, attempts: int, policy: DispatchPolicy, *, now: datetime) -> Verdict:
    """What an attempt (the `attempts`-th) makes of its delivery: 2xx delivers; network
    errors, timeouts, 429 and 5xx are retried with backoff until the last attempt; any
    other answer, and a blocked address, fail it at once."""
    code = sent.status_code
    if code is not None and 200 <= code < 300:
        return Verdict(DeliveryStatus.DELIVERED, now, None)
    error = sent.error or f"http_{code}"
    retryable = sent.error not in {BLOCKED_ADDRESS, INVALID_URL} and (
        code is None or code == 429 or code >= 500
    )
    if not retryable or attempts >= policy.max_attempts:
        return Verdict(DeliveryStatus.FAILED, now, error)
    delay = min(timedelta(seconds=policy.retry_base_seconds * 2 ** (attempts - 1)), MAX_RETRY_DELAY)
    if sent.retry_after_seconds is not None:
        delay = min(timedelta(seconds=sent.retry_after_seconds), MAX_RETRY_DELAY)
    return Verdict(DeliveryStatus.PENDING, now + delay, error)


def _uuid(value: Any) -> uuid.UUID:
    # SQLite may hand ids back as text.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _optional_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else _uuid(value)


def macro_values(row: Mapping[str, Any]) -> MacroValues:
    """A claimed delivery's macros, from its conversion, click, link and rule."""
    event = PostbackEvent(row["event"])
    occurred_at = row["occurred_at"]
    if isinstance(occurred_at, str):
        occurred_at = datetime.fromisoformat(occurred_at)
    return MacroValues(
        click_id=_uuid(row["click_id"]),
        conversion_id=_uuid(row["conversion_id"]),
        event=event.value,
        type=row["type"],
        # A status event's own status; a type's event, the conversion's status when sent.
        status=event.value if event in STATUS_EVENTS else row["status"],
        transaction_id=row["transaction_id"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        occurred_at=occurred_at,
        offer_id=_optional_uuid(row["offer_id"]),
        partner_id=_uuid(row["partner_id"]),
        tracking_link_id=_optional_uuid(row["tracking_link_id"]),
        sub_ids={name: row[name] for name in SUB_IDS},
        delivery_id=_uuid(row["id"]),
    )


class Dispatcher:
    """Sends the outbox's due deliveries until stopped; `run_once` is one round."""

    def __init__(self, policy: DispatchPolicy) -> None:
        self.policy = policy
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        # Claims whose round has not finished: released if the dispatcher stops.
        self._open_claims: set[uuid.UUID] = set()

    async def start(self) -> None:
        self._client = new_client(self.policy.send)
        self._task = asyncio.create_task(self._run(), name="postback-dispatcher")

    async def stop(self) -> None:
        """Stop between or during sends. The deliveries of an interrupted round are
        released, due again at once to any dispatcher (this worker's after a restart,
        or another's); if even that fails, as in a crash, their claims run out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for claim in list(self._open_claims):
            try:
                await outbox_sql.release_claim(claim)
            except Exception:
                logger.exception("postback dispatcher: claim %s left to run out", claim)
            self._open_claims.discard(claim)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception as error:
                # The store is down or a bug: log, wait, try again; never end the loop.
                if is_store_unavailable(error):
                    logger.warning("postback dispatcher: store unavailable: %s", error)
                else:
                    logger.exception("postback dispatcher round failed")
                sent = 0
            if sent < self.policy.batch_size:
                await asyncio.sleep(self.policy.poll_seconds)

    async def run_once(self) -> int:
        """Claim due deliveries, send them, store the results; how many were claimed."""
        now = datetime.now(UTC)
        if not await outbox_sql.any_due(now):
            return 0
        claim = uuid.uuid4()
        rows = await outbox_sql.claim_due(
            now=now,
            claimed_until=now + timedelta(seconds=self.policy.lease_seconds),
            limit=self.policy.batch_size,
            claim=claim,
        )
        client = self._client
        if client is None:
            client = self._client = new_client(self.policy.send)
        # Kept while the round runs, and when it is cancelled: stop() releases it then.
        self._open_claims.add(claim)
        try:
            await asyncio.gather(*(self._deliver(client, row, claim) for row in rows))
        except Exception:
            # A round that failed (the store went away) leaves its claims to run out.
            self._open_claims.discard(claim)
            raise
        self._open_claims.discard(claim)
        return len(rows)

    async def _deliver(
        self, client: httpx.AsyncClient, row: Mapping[str, Any], claim: uuid.UUID
    ) -> None:
        values = macro_values(row)
        url = render(row["url_template"], values)
        sent = await send(client, url, delivery_id=values.delivery_id, policy=self.policy.send)
        now = datetime.now(UTC)
        attempts = row["attempts"] + 1
        verdict = judge(sent, attempts, self.policy, now=now)
        observer().postback_attempted(verdict.status.value)
        finished = verdict.status is not DeliveryStatus.PENDING
        stored = await outbox_sql.record_attempt(
            outbox_sql.Attempt(
                delivery_id=values.delivery_id,
                rule_id=_uuid(row["rule_id"]),
                claim=claim,
                status=verdict.status,
                url=url,
                status_code=sent.status_code,
                error=verdict.error,
                next_attempt_at=verdict.next_attempt_at,
                finished_at=now if finished else None,
            ),
            failure_limit=RULE_FAILURE_LIMIT,
            disabled_reason=DISABLED_REASON,
        )
        if not stored:
            # Its lease ran out mid-send (another dispatcher may have it now), or its rule
            # was deleted, taking the delivery with it.
            logger.warning(
                "postback delivery %s: no longer claimed; result not stored", values.delivery_id
            )
