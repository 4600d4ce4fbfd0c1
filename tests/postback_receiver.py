"""A partner's postback endpoint on loopback: a real HTTP server in the test's loop that
records every request and answers as its path says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

# Path -> the status line and extra headers it answers with; /slow never answers in time.
ANSWERS = {
    "/ok": ("200 OK", ""),
    "/fail": ("500 Internal Server Error", ""),
    "/busy": ("429 Too Many Requests", "Retry-After: 120\r\n"),
    "/missing": ("404 Not Found", ""),
    "/moved": ("302 Found", "Location: http://127.0.0.1:9/ok\r\n"),
    "/big": ("200 OK", ""),
}


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    # When it arrived, as time.time().
    at: float = field(default_factory=time.time)


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    # Set on every request.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivery_ids(self) -> list[str]:
        return [request.headers["x-delivery-id"] for request in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            target = request_line.split(" ")[1]
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            parts = urlsplit(target)
            self.received.append(Received(parts.path, parse_qs(parts.query), headers))
            self.arrived.set()
            if parts.path == "/slow":
                await asyncio.sleep(30)
            status, extra = ANSWERS.get(parts.path, ANSWERS["/missing"])
            body = b"x" * 1_000_000 if parts.path == "/big" else b"ok"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found._serve, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
