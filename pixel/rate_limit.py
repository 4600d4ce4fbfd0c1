"""Optional per-client limits on pixel fires and tracking-link visits, counted in fixed
one-minute windows.

A client is an IPv4 address or an IPv6 /64: one subscriber usually gets a whole /64 and
can pick a fresh address in it for every request, so counting IPv6 addresses one by one
would limit nothing.

Counts live in the worker's memory: with N workers a client gets up to N times the
limit. That is enough to blunt a flood from one client; a global limit belongs in the
reverse proxy.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from models.errors import FieldError
from pixel.client_ip import Caller, TrustedProxies
from pixel.responses import Answer, errors_answer

WINDOW_SECONDS = 60.0
IPV6_CLIENT_PREFIX = 64


def client_key(address: str | None) -> str:
    """What a limit counts for a client address: itself (IPv4) or its /64 (IPv6)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        # No address (a Unix socket): such clients share one count.
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._window_ends = clock() + WINDOW_SECONDS
        self._counts: dict[str, int] = {}

    def retry_after(self, client: str) -> int | None:
        """Count one request from `client`; None if allowed, else the seconds to wait."""
        now = self._clock()
        if now >= self._window_ends:
            # A new window forgets every client, which also bounds the memory used.
            self._counts.clear()
            self._window_ends = now + WINDOW_SECONDS
        fired = self._counts.get(client, 0) + 1
        self._counts[client] = fired
        if fired > self.per_minute:
            return max(1, math.ceil(self._window_ends - now))
        return None


def optional_limiter(per_minute: int) -> RateLimiter | None:
    """A limit of `per_minute` requests per client, or none for 0 (the settings' "off")."""
    return RateLimiter(per_minute) if per_minute else None


def rate_limited(
    caller: Caller, trusted_proxies: TrustedProxies, limiter: RateLimiter | None, what: str
) -> Answer | None:
    """429 when the caller's client is over `limiter`'s limit (none without a limiter)."""
    if limiter is None:
        return None
    retry_after = limiter.retry_after(client_key(caller.client_ip(trusted_proxies)))
    if retry_after is None:
        return None
    return errors_answer(
        429,
        [FieldError(None, "rate_limited", f"too many {what} from this address; retry later")],
        headers=(("Retry-After", str(retry_after)),),
    )
