"""The per-client pixel limit's arithmetic, on a clock the test moves."""

from __future__ import annotations

from pixel.rate_limit import RateLimiter, client_key


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


def test_an_ipv4_client_is_its_address() -> None:
    assert client_key("198.51.100.1") != client_key("198.51.100.2")
    assert client_key("::ffff:198.51.100.1") == client_key("198.51.100.1")


def test_an_ipv6_client_is_its_64() -> None:
    # A subscriber's /64 holds more addresses than a limit could ever count one by one.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")


def test_clients_without_an_address_share_one_count() -> None:
    assert client_key(None) == client_key("not-an-address")
