"""The live feed's test tools: the app served by uvicorn in the test's own event loop
(sharing its open store), and a `graphql-transport-ws` client over a real websocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from models.reports.live import open_subscriptions
from tests.throwaway_postgres import free_port

PROTOCOL = Subprotocol("graphql-transport-ws")
CONVERSION_RECORDED = """
subscription ($filter: ConversionFilter) {
  conversionRecorded(filter: $filter) { id type transactionId amount currency click { id } }
}
"""


@asynccontextmanager
async def served_here(app: Litestar) -> AsyncIterator[str]:
    """The app on a loopback port, in this event loop; its websocket base URL. The
    lifespan is the test's: the store fixture has opened the store already."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off", log_level="warning")
    )
    serving = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await serving


@dataclass
class Closed:
    code: int
    reason: str


@dataclass
class LiveSocket:
    """One websocket: connection_init with a key, then subscriptions by id."""

    connection: ClientConnection
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[Any]] = field(default_factory=dict)
    # When each message arrived (time.time(), the server's clock too), by subscription id.
    arrived_at: dict[str, list[float]] = field(default_factory=dict)

    async def subscribe(
        self,
        operation_id: str = "1",
        variables: dict[str, Any] | None = None,
        query: str = CONVERSION_RECORDED,
    ) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": operation_id, "type": "subscribe", "payload": payload})

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def read_for(self, seconds: float) -> Closed | None:
        """Read what arrives for `seconds`; how the socket closed, if it did."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.connection.recv(), timeout=left)
            except TimeoutError:
                return None
            except ConnectionClosed as closed:
                frame = closed.rcvd
                return Closed(frame.code, frame.reason) if frame else Closed(1006, "")
            self._take(json.loads(raw))
        return None

    async def read_until(self, operation_id: str, count: int, seconds: float = 5.0) -> None:
        """Read until subscription `operation_id` has `count` conversions (or fail)."""
        deadline = time.monotonic() + seconds
        while len(self.received.get(operation_id, [])) < count:
            left = deadline - time.monotonic()
            assert left > 0, (
                f"{len(self.received.get(operation_id, []))} of {count} conversions "
                f"arrived: {self.received} {self.errors}"
            )
            closed = await self.read_for(min(left, 0.05))
            assert closed is None, closed

    def _take(self, message: dict[str, Any]) -> None:
        if message["type"] == "next":
            payload = message["payload"]
            if payload.get("errors"):
                self.errors.setdefault(message["id"], []).extend(payload["errors"])
            else:
                [conversion] = payload["data"].values()
                self.received.setdefault(message["id"], []).append(conversion)
                self.arrived_at.setdefault(message["id"], []).append(time.time())
        elif message["type"] == "error":
            self.errors.setdefault(message["id"], []).extend(message["payload"])

    def ids(self, operation_id: str = "1") -> list[str]:
        return [conversion["id"] for conversion in self.received.get(operation_id, [])]


@asynccontextmanager
async def live_socket(base_url: str, payload: dict[str, Any] | None) -> AsyncIterator[LiveSocket]:
    """A socket past connection_init with `payload`; the ack must come."""
    async with connect(f"{base_url}/graphql", subprotocols=[PROTOCOL]) as connection:
        socket = LiveSocket(connection)
        await socket.send({"type": "connection_init", "payload": payload or {}})
        ack = json.loads(await asyncio.wait_for(connection.recv(), timeout=5))
        assert ack["type"] == "connection_ack", ack
        yield socket


def key_payload(secret: str) -> dict[str, Any]:
    return {"authorization": f"Bearer {secret}"}


async def refused_with(base_url: str, init: dict[str, Any] | None) -> Closed:
    """How the server closes a socket whose first message is `init` (None: a subscribe
    before any connection_init)."""
    async with connect(f"{base_url}/graphql", subprotocols=[PROTOCOL]) as connection:
        socket = LiveSocket(connection)
        if init is None:
            await socket.subscribe()
        else:
            await socket.send(init)
        closed = await socket.read_for(5)
        assert closed is not None, "the socket stayed open"
        return closed


async def subscribed_here(count: int) -> None:
    """Wait until this process's feed holds `count` subscriptions: only then is every
    conversion committed afterwards sure to reach them."""
    deadline = time.monotonic() + 5
    while open_subscriptions() != count:
        assert time.monotonic() < deadline, f"{open_subscriptions()} subscriptions, not {count}"
        await asyncio.sleep(0.01)
