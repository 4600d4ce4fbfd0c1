"""uvicorn's HTTP protocols with the two bounds uvicorn lacks, enforced before the app runs.

- **Time.** uvicorn has no deadline for receiving a request: its keep-alive timer only
  runs between requests and stops at the first byte of the next one, so a client that
  trickles a request (or opens a connection and sends nothing) holds it for ever. Here
  a request must arrive in full, head and body, within `request_receive_timeout_seconds`
  of its first byte or of its connection's opening; past that the connection is closed,
  as nginx does on its `client_header_timeout`.
- **Size.** httptools hands uvicorn a header only once it has read all of it, so a
  200 MB header is held in memory before the app's 431 can refuse it. Here a request
  head that grows past `Settings.max_request_head_bytes` while incomplete is answered
  431 and its connection closed, holding at most that plus one read. h11 enforces the
  same bound itself (`h11_max_incomplete_event_size`, which `conversions serve` sets),
  answering uvicorn's plain 400.

`conversions serve --http` picks one of these classes by its import string.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.limits import HEADERS_TOO_LARGE
from api.settings import Settings

PROTOCOLS = {
    "auto": f"{__name__}:BoundedHttpToolsProtocol",
    "httptools": f"{__name__}:BoundedHttpToolsProtocol",
    "h11": f"{__name__}:BoundedH11Protocol",
}

HEAD_TOO_LARGE_RESPONSE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(HEADERS_TOO_LARGE),
        b"x-content-type-options: nosniff\r\n",
        b"connection: close\r\n\r\n",
        HEADERS_TOO_LARGE,
    ]
)
# h11's states while a request is still arriving: its head, then its body.
H11_RECEIVING = (h11.IDLE, h11.SEND_BODY)


@cache
def worker_settings() -> Settings:
    """The settings, read once per worker process: every protocol instance is a connection."""
    return Settings.from_env()


class RequestDeadline:
    """Closes a connection whose request has not arrived in full in time."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, seconds: float
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._seconds = seconds
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """From now, unless already running (a request's later bytes do not extend it)."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._seconds, self._expire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._transport.close()


class _Deadlined(asyncio.Protocol):
    """A request deadline for either of uvicorn's protocols (mixed in before it)."""

    loop: asyncio.AbstractEventLoop
    deadline: RequestDeadline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # uvicorn's protocols serve stream transports (uvloop's do not subclass asyncio's).
        self.deadline = RequestDeadline(
            self.loop,
            cast(asyncio.Transport, transport),
            worker_settings().request_receive_timeout_seconds,
        )
        # A connection that never sends a byte is held to the same bound.
        self.deadline.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's keep-alive timer stops at any byte, even a stray CRLF: from here on
        # the deadline holds the connection to account.
        self.deadline.start()
        super().data_received(data)


class BoundedH11Protocol(_Deadlined, H11Protocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in H11_RECEIVING:
            self.deadline.stop()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request parsed from what was already buffered may still be sending
        # its body, with no read to start the deadline.
        if self.conn.their_state is h11.SEND_BODY:
            self.deadline.start()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The websocket protocol takes the connection over, with its own timeouts.
        self.deadline.stop()
        super().handle_websocket_upgrade(event)


class BoundedHttpToolsProtocol(_Deadlined, HttpToolsProtocol):
    # Bytes received since the current request began while its head is incomplete;
    # None once the head is complete.
    head_bytes: int | None = 0

    def data_received(self, data: bytes) -> None:
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so that a head and its body in one read are not taken
        # for a long head; httptools holds at most the bound plus this one read.
        if (
            self.head_bytes is not None
            and self.head_bytes > worker_settings().max_request_head_bytes
            and not self.transport.is_closing()
        ):
            self.transport.write(HEAD_TOO_LARGE_RESPONSE)
            self.transport.close()

    def on_message_begin(self) -> None:
        # Also the begin of a pipelined request read after the previous one's end.
        self.deadline.start()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.deadline.stop()
        self.head_bytes = 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the connection over, with its own timeouts.
        self.deadline.stop()
        super().handle_websocket_upgrade()
