"""The live feed in GraphQL: `subscription { conversionRecorded(filter) }`, over the
websocket of schema/sockets.py, fed by this worker's LiveFeed (models/reports/live.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry
from litestar.connection import WebSocket
from strawberry import Info

from models.reports.live import SubscriberFellBehindError, live_feed
from schema.context import GraphQLContext
from schema.conversions import Conversion, ConversionFilter
from schema.errors import ClientError
from schema.loaders import create_loaders
from schema.permissions import CanRead
from schema.relay import conditions_of, node

# The subscriber fell behind: WebSocket's "try again later", which clients retry.
FELL_BEHIND_CLOSE_CODE = 1013
FELL_BEHIND = "SUBSCRIBER_FELL_BEHIND"
# Close tasks in flight, kept until done (the event loop holds tasks only weakly).
_closing: set[asyncio.Task[None]] = set()


def _close_soon(socket: WebSocket | None, reason: str) -> None:
    """Close the socket without waiting: a send to a slow subscriber may be stuck."""
    if socket is None:
        return
    task = asyncio.get_running_loop().create_task(
        socket.close(code=FELL_BEHIND_CLOSE_CODE, reason=reason)
    )
    _closing.add(task)
    task.add_done_callback(_closing.discard)


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Every conversion stored from now on that the filter matches, once, "
        "within a second of its commit; repeats and test reports send nothing. A partner's "
        "key receives only its partner's. A subscriber that falls behind is closed (1013).",
    )
    async def conversion_recorded(
        self, info: Info[GraphQLContext, None], filter: ConversionFilter | None = None
    ) -> AsyncGenerator[Conversion, None]:
        context = info.context
        conditions = conditions_of(filter)
        socket = context.websocket
        try:
            async with live_feed().subscribe(
                context.access,
                conditions,
                queue_size=context.limits.subscription_queue_size,
                on_fell_behind=lambda reason: _close_soon(socket, reason),
            ) as subscription:
                async for record in subscription:
                    # Each message's loaders are fresh: a socket lives for hours, and a
                    # loader caches every row it loads.
                    context.loaders = create_loaders(context.access)
                    yield node(record)
        except SubscriberFellBehindError as behind:
            raise ClientError(str(behind), FELL_BEHIND) from behind
