"""One postback request, sent safely: the host resolved at send time and its address
checked, the connection made to that very address (no second look-up that DNS could
rebind), GET with a deadline, no redirects followed, and at most a few KiB of the
answer read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from models.postbacks.macros import is_public_address

# What is read of an answer: enough for a log, never a partner's whole page.
MAX_BODY_BYTES = 4096
BLOCKED_ADDRESS = "blocked_address"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
INVALID_URL = "invalid_url"


@dataclass(frozen=True, kw_only=True)
class SendPolicy:
    """The settings a send obeys (POSTBACK_* in api/settings.py)."""

    timeout_seconds: float = 10.0
    allow_private_networks: bool = False


@dataclass(frozen=True, kw_only=True)
class Sent:
    """How one request went: a status code, or an error code and no status."""

    url: str
    status_code: int | None
    error: str | None
    # The answer's Retry-After in seconds, when it gave a usable one.
    retry_after_seconds: float | None
    duration_ms: int


def retry_after_seconds(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def _checked_address(host: str, port: int, policy: SendPolicy) -> str | None:
    """The address to connect to, or None when any address of the host is not public:
    a host that answers with both must not pick the private one on a retry."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} has no address")
    if not policy.allow_private_networks and not all(map(is_public_address, addresses)):
        return None
    return str(addresses[0])


async def send(
    client: httpx.AsyncClient, url: str, *, delivery_id: uuid.UUID, policy: SendPolicy
) -> Sent:
    """GET `url` once, with `X-Delivery-Id`; never raises for the partner's failures."""
    started = time.monotonic()

    def sent(
        status_code: int | None = None, error: str | None = None, retry_after: float | None = None
    ) -> Sent:
        duration_ms = int((time.monotonic() - started) * 1000)
        return Sent(
            url=url,
            status_code=status_code,
            error=error,
            retry_after_seconds=retry_after,
            duration_ms=duration_ms,
        )

    try:
        target = httpx.URL(url)
        host, port = target.host, target.port or (443 if target.scheme == "https" else 80)
        if target.scheme not in {"http", "https"} or not host:
            return sent(error=INVALID_URL)
    except httpx.InvalidURL:
        return sent(error=INVALID_URL)
    try:
        async with asyncio.timeout(policy.timeout_seconds):
            address = await _checked_address(host, port, policy)
            if address is None:
                return sent(error=BLOCKED_ADDRESS)
            # The checked address in the URL; the name in Host, and in TLS's SNI and
            # certificate check.
            request = client.build_request(
                "GET",
                target.copy_with(host=address),
                headers={"Host": target.netloc.decode("ascii"), "X-Delivery-Id": str(delivery_id)},
                extensions={"sni_hostname": host},
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_BODY_BYTES:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return sent(error=TIMEOUT)
    except (httpx.HTTPError, OSError, UnicodeError):
        return sent(error=CONNECTION_ERROR)
    retry_after = retry_after_seconds(response.headers.get("retry-after"), now=datetime.now(UTC))
    return sent(status_code=response.status_code, retry_after=retry_after)


def new_client(policy: SendPolicy) -> httpx.AsyncClient:
    """The client a dispatcher keeps: no redirects, no proxies from the environment (a
    proxy would make the address check meaningless), the send's own deadline."""
    return httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=policy.timeout_seconds
    )
