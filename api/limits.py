"""A bound on request headers, for every route: servers differ in what they allow."""

from __future__ import annotations

from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from models.errors import FieldError, error_body

HEADERS_TOO_LARGE = error_body(
    [FieldError(None, "headers_too_large", "the request headers are too large")]
)


def header_size_limit(max_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware factory: answer 431 when the headers add up to more than max_bytes."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                size = sum(len(name) + len(value) for name, value in scope["headers"])
                if size > max_bytes:
                    start: HTTPResponseStartEvent = {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [(b"content-type", b"application/json")],
                    }
                    body: HTTPResponseBodyEvent = {
                        "type": "http.response.body",
                        "body": HEADERS_TOO_LARGE,
                        "more_body": False,
                    }
                    await send(start)
                    await send(body)
                    return
            await app(scope, receive, send)

        return bounded

    return middleware
