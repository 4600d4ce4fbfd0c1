"""The pure rules of sending a postback: which addresses are public, how Retry-After
reads, and what each answer makes of a delivery (no store, no network)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from models.postbacks.dispatcher import DispatchPolicy, judge
from models.postbacks.macros import is_public_address
from models.postbacks.sending import Sent, retry_after_seconds
from models.store.tables import DeliveryStatus

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
POLICY = DispatchPolicy(retry_base_seconds=30, max_attempts=10)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("240.0.0.1", False),  # reserved
        ("224.0.0.1", False),  # multicast
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120", now=NOW) == 120
    assert retry_after_seconds("Wed, 02 Dec 2026 08:10:00 GMT", now=NOW) == 600
    assert retry_after_seconds("Wed, 02 Dec 2026 07:00:00 GMT", now=NOW) == 0
    assert retry_after_seconds("soon", now=NOW) is None
    assert retry_after_seconds(None, now=NOW) is None


def _sent(
    status_code: int | None = None, error: str | None = None, retry_after: float | None = None
) -> Sent:
    return Sent(
        url="https://p.example/",
        status_code=status_code,
        error=error,
        retry_after_seconds=retry_after,
        duration_ms=1,
    )


def test_backoff_doubles_from_the_base_up_to_an_hour() -> None:
    delays = [
        judge(_sent(503), attempts, POLICY, now=NOW).next_attempt_at - NOW
        for attempts in range(1, 10)
    ]
    assert [delay.total_seconds() for delay in delays] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def test_retry_after_is_honoured_up_to_an_hour() -> None:
    assert judge(_sent(429, retry_after=5), 1, POLICY, now=NOW).next_attempt_at == NOW + timedelta(
        seconds=5
    )
    verdict = judge(_sent(503, retry_after=7200), 1, POLICY, now=NOW)
    assert verdict.next_attempt_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("sent", "status", "error"),
    [
        (_sent(200), DeliveryStatus.DELIVERED, None),
        (_sent(204), DeliveryStatus.DELIVERED, None),
        (_sent(500), DeliveryStatus.PENDING, "http_500"),
        (_sent(429), DeliveryStatus.PENDING, "http_429"),
        (_sent(error="timeout"), DeliveryStatus.PENDING, "timeout"),
        (_sent(error="connection_error"), DeliveryStatus.PENDING, "connection_error"),
        (_sent(301), DeliveryStatus.FAILED, "http_301"),
        (_sent(400), DeliveryStatus.FAILED, "http_400"),
        (_sent(410), DeliveryStatus.FAILED, "http_410"),
        (_sent(error="blocked_address"), DeliveryStatus.FAILED, "blocked_address"),
    ],
)
def test_each_answer_delivers_retries_or_fails(
    sent: Sent, status: DeliveryStatus, error: str | None
) -> None:
    verdict = judge(sent, 1, POLICY, now=NOW)
    assert (verdict.status, verdict.error) == (status, error)


def test_the_last_attempt_fails_a_retryable_answer() -> None:
    assert judge(_sent(503), 9, POLICY, now=NOW).status is DeliveryStatus.PENDING
    assert judge(_sent(503), 10, POLICY, now=NOW).status is DeliveryStatus.FAILED
