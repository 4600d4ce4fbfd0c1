"""The per-request GraphQL context: who is asking, what they may ask, fresh DataLoaders.

Authentication happens here, before any GraphQL runs, so that a missing, unknown or
revoked key is an HTTP 401 rather than a GraphQL error inside a 200. So does the
key's `Access` (models/partners/access.py): the loaders are built on it, and every
resolver hands `context.access` to the reads and services it calls, which keep to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from litestar.connection import ASGIConnection, Request, WebSocket
from strawberry.litestar import BaseContext

from models.keys import READS as KEY_READS
from models.keys import ApiKeyRecord, Scope, find_active_key
from models.partners.access import EVERYTHING, Access
from models.postbacks.sending import SendPolicy
from models.store.engine import is_store_unavailable
from schema.errors import STORE_UNAVAILABLE, UNAUTHENTICATED, GraphQLHTTPError
from schema.loaders import Loaders, create_loaders

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="graphql"'}


@dataclass(frozen=True, kw_only=True)
class GraphQLLimits:
    """What one GraphQL request may ask for and take (the settings GRAPHQL_MAX_* and
    GRAPHQL_TIMEOUT_SECONDS)."""

    max_depth: int
    max_aliases: int
    max_tokens: int
    max_page_size: int
    max_cost: int
    timeout_seconds: float
    # Conversions that may wait for one conversionRecorded subscriber before it is closed.
    subscription_queue_size: int = 1000
    # Not configurable: clients code against "first defaults to 50".
    default_page_size: int = 50

    @property
    def default_first(self) -> int:
        """The size of a page that gives no `first`."""
        return min(self.default_page_size, self.max_page_size)


def _unauthenticated(message: str) -> GraphQLHTTPError:
    return GraphQLHTTPError(
        message, status_code=401, code=UNAUTHENTICATED, headers=BEARER_CHALLENGE
    )


class GraphQLContext(BaseContext, kw_only=True):
    api_key_scope: Scope | None
    # Who is asking, as a status change records it (changedBy).
    api_key_name: str | None
    # Whose data this request sees: a partner's key sees its partner's alone.
    access: Access
    limits: GraphQLLimits
    dev: bool
    request_id: str
    loaders: Loaders
    # What a rule's URL may name and how a test fire is sent (POSTBACK_* settings).
    postbacks: SendPolicy
    # A websocket's connection_init payload, where its key is (see `authenticate_socket`),
    # and that key's id once accepted.
    connection_params: dict[str, object] | None = None
    socket_key_id: uuid.UUID | None = None


def _bearer_secret(authorization: object) -> str:
    scheme, _, secret = (authorization if isinstance(authorization, str) else "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthenticated("an API key is required: send Authorization: Bearer <key>")
    return secret.strip()


async def authenticate(connection: ASGIConnection, retry_after_seconds: int) -> ApiKeyRecord:
    return await _key_of(connection.headers.get("authorization"), retry_after_seconds)


async def authenticate_socket(context: GraphQLContext, retry_after_seconds: int) -> None:
    """A websocket's key, from its connection_init payload
    (`{"authorization": "Bearer <key>"}`): raises GraphQLHTTPError (401 or 503) when
    there is no valid key, else gives the context the key's scope and access."""
    params = context.connection_params or {}
    key = await _key_of(params.get("authorization"), retry_after_seconds)
    context.api_key_scope, context.api_key_name, context.access = key.scope, key.name, key.access
    context.loaders = create_loaders(key.access)
    context.socket_key_id = key.id


async def socket_key_is_active(context: GraphQLContext) -> bool:
    """Whether the key a websocket was accepted with is still unrevoked."""
    assert context.socket_key_id is not None
    keys = await KEY_READS.by_ids(EVERYTHING, [context.socket_key_id])
    key = keys.get(context.socket_key_id)
    return key is not None and key.revoked_at is None


async def _key_of(authorization: object, retry_after_seconds: int) -> ApiKeyRecord:
    secret = _bearer_secret(authorization)
    try:
        key = await find_active_key(secret)
    except Exception as error:
        if is_store_unavailable(error):
            raise GraphQLHTTPError(
                "the store cannot check the API key now; retry later",
                status_code=503,
                code=STORE_UNAVAILABLE,
                headers={"Retry-After": str(retry_after_seconds)},
            ) from error
        raise
    if key is None:
        raise _unauthenticated("invalid or revoked API key")
    return key


def _only_opens_graphiql(connection: ASGIConnection) -> bool:
    """A browser loading GraphiQL cannot send a key; such a GET executes nothing."""
    return (
        isinstance(connection, Request)
        and connection.method == "GET"
        and "query" not in connection.query_params
    )


def make_context_getter(
    limits: GraphQLLimits,
    *,
    dev: bool,
    retry_after_seconds: int,
    postbacks: SendPolicy,
    request_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> Callable[[ASGIConnection], Awaitable[GraphQLContext]]:
    """`request_id` names the request being served: the app's own id of it, so that
    GraphQL errors, the answer's header and the log name it alike."""

    async def context_getter(request: ASGIConnection) -> GraphQLContext:
        # Litestar injects by parameter name: `request` serves HTTP and websockets alike.
        if (dev and _only_opens_graphiql(request)) or isinstance(request, WebSocket):
            # Nothing executes; and without a scope every field's permission refuses.
            # A websocket brings its key in connection_init (`authenticate_socket`).
            scope, name, access = None, None, EVERYTHING
        else:
            key = await authenticate(request, retry_after_seconds)
            scope, name, access = key.scope, key.name, key.access
        return GraphQLContext(
            api_key_scope=scope,
            api_key_name=name,
            access=access,
            limits=limits,
            dev=dev,
            request_id=request_id(),
            loaders=create_loaders(access),
            postbacks=postbacks,
        )

    return context_getter
