"""The per-client pixel limit's arithmetic, on a clock the test moves."""

from __future__ import annotations

from pixel.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    assert [limiter.retry_after("a") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert limiter.retry_after("a") == 40


def test_clients_are_counted_apart() -> None:
    limiter = RateLimiter(per_minute=1, clock=Clock())
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("b") is None
    assert limiter.retry_after("a") is not None


def test_a_new_window_starts_afresh() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=1, clock=clock)
    limiter.retry_after("a")
    assert limiter.retry_after("a") is not None
    clock.now += 60
    assert limiter.retry_after("a") is None
