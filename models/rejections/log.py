"""The log of rejected fires: what a refused pixel fire leaves for its integrator.

Cheap and bounded, since a flood of bad fires must neither fill the store nor slow the
pixel. Each worker counts what it logs in fixed clock hours, before anything is built
or queued: at most `per_offer_per_hour` rejections per offer, and for fires whose offer
is unknown (no such click, an unreadable click id, a click without a tracking link) at
most `per_address_per_hour` per client address and `per_offer_per_hour` all together.
A logged rejection joins the worker's next group-commit batch (models/writes.py) and
the fire's answer does not wait for it: the log helps debugging, it is no promise.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from models.conversions.outcomes import ClickOwner
from models.conversions.signatures import SIGNATURE_PARAMETER
from models.errors import FieldError
from models.rejections.records import FireRejectionRecord
from models.writes import queue_rejection

# What is kept of a fire's parameters: 1 KiB, in ASCII.
MAX_QUERY_LENGTH = 1024
HOUR_SECONDS = 3600
# Kept as sent; every other byte (spaces, controls, raw non-ASCII) is percent-encoded,
# so the stored text is printable ASCII whatever arrived.
_KEPT_AS_SENT = bytes(range(0x21, 0x7F))
_SIGNATURE_NAME = SIGNATURE_PARAMETER.encode()


def _is_signature(pair: bytes) -> bool:
    """A `sig=...` pair, however its name is encoded or cased: never stored."""
    name = pair.partition(b"=")[0]
    if b"%" in name or b"+" in name:
        name = unquote_to_bytes(name.replace(b"+", b" "))
    return name.lower() == _SIGNATURE_NAME


def _without_signatures(part: bytes) -> bytes:
    # A part with neither "sig" in any case nor an escape has no signature to take out.
    if b"%" not in part and _SIGNATURE_NAME not in part.lower():
        return part
    return b"&".join(pair for pair in part.split(b"&") if pair and not _is_signature(pair))


def loggable_query(*encoded_parts: bytes) -> str | None:
    """A fire's parameters (its query string, and a POST's form body after it) as the log
    keeps them: every `sig` pair taken out, percent-encoded ASCII, at most
    MAX_QUERY_LENGTH characters; None when nothing is left."""
    joined = b"&".join(kept for part in encoded_parts if (kept := _without_signatures(part)))
    if not joined:
        return None
    # Most queries need no escaping at all: found in C, without quoting byte by byte.
    if joined.translate(None, _KEPT_AS_SENT):
        text = quote_from_bytes(joined, safe=_KEPT_AS_SENT)
    else:
        text = joined.decode("ascii")
    if len(text) <= MAX_QUERY_LENGTH:
        return text
    text = text[:MAX_QUERY_LENGTH]
    # A percent-escape the cut went through is dropped whole.
    escape = text.rfind("%", MAX_QUERY_LENGTH - 2)
    return text[:escape] if escape != -1 else text


class RejectionCap:
    """Per-worker counts of logged rejections in the current clock hour."""

    def __init__(
        self,
        per_offer_per_hour: int,
        per_address_per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_offer_per_hour = per_offer_per_hour
        self.per_address_per_hour = per_address_per_hour
        self._clock = clock
        self._hour = -1
        # Unknown offers count together under None.
        self._by_offer: dict[uuid.UUID | None, int] = {}
        # Only addresses let in are counted, so at most per_offer_per_hour of them.
        self._by_address: dict[str | None, int] = {}

    def admits(self, offer_id: uuid.UUID | None, address: str | None) -> bool:
        """Whether one more rejection may be logged now, counting it if so."""
        hour = int(self._clock() // HOUR_SECONDS)
        if hour != self._hour:
            self._hour = hour
            self._by_offer.clear()
            self._by_address.clear()
        logged = self._by_offer.get(offer_id, 0)
        if logged >= self.per_offer_per_hour:
            return False
        if offer_id is None:
            from_address = self._by_address.get(address, 0)
            if from_address >= self.per_address_per_hour:
                return False
            self._by_address[address] = from_address + 1
        self._by_offer[offer_id] = logged + 1
        return True


@dataclass(frozen=True, slots=True)
class RejectedFire:
    """A pixel fire as it was refused: the answer's status and errors, and what the
    request carried. `encoded_parameters` are the raw query string and form body."""

    status: int
    errors: list[FieldError]
    click_id: str
    owner: ClickOwner | None
    encoded_parameters: tuple[bytes, ...]
    ip: str | None
    user_agent: str | None
    referrer: str | None


def _click_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class RejectionLog:
    """One worker's log of rejected fires, under its cap: a face asks `admits` before
    it gathers anything of a fire, then `log`s the fires admitted."""

    def __init__(self, cap: RejectionCap) -> None:
        self.cap = cap

    def admits(self, offer_id: uuid.UUID | None, address: str | None) -> bool:
        """Whether one more rejection of the offer (or, without one, of the address) may
        be logged this hour, counting it if so."""
        return self.cap.admits(offer_id, address)

    def log(self, fire: RejectedFire) -> None:
        """Queue an admitted fire's rejection for the worker's next batch."""
        queue_rejection(
            FireRejectionRecord(
                id=uuid.uuid4(),
                at=datetime.now(UTC),
                status=fire.status,
                errors=[error.named() for error in fire.errors],
                click_id=_click_id(fire.click_id),
                offer_id=fire.owner.offer_id if fire.owner else None,
                partner_id=fire.owner.partner_id if fire.owner else None,
                query=loggable_query(*fire.encoded_parameters),
                ip=fire.ip,
                user_agent=fire.user_agent,
                referrer=fire.referrer,
            )
        )
