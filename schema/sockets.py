"""GraphQL over websockets (`graphql-transport-ws` at /graphql): the key comes in the
`connection_init` payload, `{"authorization": "Bearer <key>"}`.

Close codes: 4401 when the key is missing, unknown or revoked (unauthenticated, as
HTTP's 401: every key may read, so no key is ever refused as forbidden, 4403), also
within KEY_CHECK_SECONDS of its revocation on a socket already open; 1013 ("try again
later") when the store cannot check the key now. Strawberry's own remain:
4401 for a subscribe before the acknowledgement, 4408 when connection_init does not
come in time, 4400 for a malformed message. The older `graphql-ws` protocol is not
offered: it would need its own key handling.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from strawberry.litestar import make_graphql_controller
from strawberry.litestar.controller import GraphQLController
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types.unset import UNSET, UnsetType

from models.store.engine import is_store_unavailable
from schema.context import GraphQLContext, authenticate_socket, socket_key_is_active
from schema.errors import GraphQLHTTPError

UNAUTHORIZED_CLOSE_CODE = 4401
TRY_AGAIN_LATER_CLOSE_CODE = 1013
# How long a new socket may take to send connection_init.
CONNECTION_INIT_SECONDS = 10
# How often an open socket's key is checked again: a revoked key's sockets close.
KEY_CHECK_SECONDS = 30.0


class SocketRefusedError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _KeyedTransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """Strawberry's handler, closing with our code and reason when the key is refused
    (Strawberry's own refusal is always 4403 "Forbidden"), and when it is revoked
    while the socket is open."""

    key_check: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefusedError as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)
            return
        if self.connection_acknowledged and self.key_check is None:
            self.key_check = asyncio.get_running_loop().create_task(self._check_key())

    async def _check_key(self) -> None:
        while True:
            await asyncio.sleep(KEY_CHECK_SECONDS)
            try:
                active = await socket_key_is_active(self.context)
            except Exception as error:
                if not is_store_unavailable(error):
                    raise
                continue  # an outage revokes nothing: checked again next time
            if not active:
                await self.websocket.close(
                    code=UNAUTHORIZED_CLOSE_CODE, reason="the API key was revoked"
                )
                return

    async def shutdown(self) -> None:
        if self.key_check is not None:
            self.key_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.key_check
        await super().shutdown()


def graphql_controller(
    schema: BaseSchema, *, retry_after_seconds: int, **options: Any
) -> type[GraphQLController]:
    """Strawberry's Litestar controller at /graphql with keyed websockets; `options` are
    make_graphql_controller's."""
    base: Any = make_graphql_controller(
        schema,
        path="/graphql",
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_SECONDS),
        **options,
    )

    class KeyedGraphQLController(base):  # type: ignore[misc]
        graphql_transport_ws_handler_class = _KeyedTransportWSHandler

        async def on_ws_connect(self, context: GraphQLContext) -> UnsetType:
            try:
                await authenticate_socket(context, retry_after_seconds)
            except GraphQLHTTPError as refused:
                code = (
                    UNAUTHORIZED_CLOSE_CODE
                    if refused.status_code == 401
                    else TRY_AGAIN_LATER_CLOSE_CODE
                )
                raise SocketRefusedError(code, refused.detail) from refused
            return UNSET

    return KeyedGraphQLController
