"""What both public faces check before they read a request's parameters: the caller's
rate limit, then the query string's length."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.types import Scope

from pixel.client_ip import Caller, TrustedProxies
from pixel.query import MAX_QUERY_BYTES
from pixel.rate_limit import RateLimiter, rate_limited
from pixel.responses import Answer, query_too_long_answer


@dataclass(frozen=True, slots=True)
class Admitted:
    caller: Caller
    query: bytes


def admit(
    scope: Scope, trusted_proxies: TrustedProxies, limiter: RateLimiter | None, what: str
) -> Admitted | Answer:
    """The request's caller and raw query string, or the answer refusing it (429, 414);
    `what` names the requests in a 429's message ("fires", "visits")."""
    caller = Caller.of_scope(scope)
    if limited := rate_limited(caller, trusted_proxies, limiter, what=what):
        return limited
    query: bytes = scope["query_string"]
    if len(query) > MAX_QUERY_BYTES:
        return query_too_long_answer(MAX_QUERY_BYTES)
    return Admitted(caller, query)
