"""An optional per-client limit on pixel fires, counted in fixed one-minute windows.

Counts live in the worker's memory: with N workers a client gets up to N times the
limit. That is enough to blunt a flood from one address; a global limit belongs in
the reverse proxy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._window_ends = clock() + WINDOW_SECONDS
        self._counts: dict[str, int] = {}

    def retry_after(self, client: str) -> int | None:
        """Count one fire from `client`; None if allowed, else the seconds to wait."""
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
