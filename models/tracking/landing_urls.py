"""Each worker's cache of tracking links' landing URLs, so a visit makes no look-up.

Clicks outnumber everything else, and a link's landing URL rarely changes: each
worker keeps what it read for `STALENESS_SECONDS`. A change made through this
worker clears its cache at once; other workers see it within that bound. Unknown
links are remembered too, so a flood of made-up ids costs the store one look-up
per id and bound, not one per request.
"""

from __future__ import annotations

import uuid

from cachetools import TTLCache

# The README promises it: a changed landing URL reaches every worker within this.
STALENESS_SECONDS = 5
# Bounded: made-up link ids must not grow a worker's memory.
MAX_LINKS = 10_000

_cache: TTLCache[uuid.UUID, str | None] = TTLCache(maxsize=MAX_LINKS, ttl=STALENESS_SECONDS)


def cached(link_id: uuid.UUID) -> tuple[bool, str | None]:
    """(whether the cache knows the link, its landing URL or None for no such link)."""
    try:
        return True, _cache[link_id]
    except KeyError:
        return False, None


def remember(link_id: uuid.UUID, landing_url: str | None) -> None:
    _cache[link_id] = landing_url


def forget_all() -> None:
    """After this worker changed an offer or a link: no stale URL here at all."""
    _cache.clear()
