"""The front door: what every HTTP request meets first, before Litestar routes it.

- The request's id (api/request_ids.py), for every path.
- The bound on request headers (431), for every path.
- Raw GET routes for the two hot paths, `/convert/{click_id}` and
  `/track/{tracking_id}`. Litestar's per-request machinery (routing, the signature
  model, the Request and Response objects, the middleware stack) cost the pixel about
  a tenth of its CPU, as much as the parameters' validation and the batch's share
  together; a plain GET on these paths is answered straight from the ASGI scope by the
  faces' own code instead (`Pixel.get`, `TrackingLinks.visit`). Every other request
  (POST, HEAD, OPTIONS, a path of another shape, such as one with a trailing slash)
  goes on to Litestar, whose handlers on the same paths call the same code and are
  what OpenAPI describes.

The door is installed inside Litestar's own entry point (`Litestar.asgi_handler`), so
its answers pass the app's `before_send` hook and carry the same headers as any other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from api import request_ids
from api.limits import HEADERS_TOO_LARGE, headers_too_large
from models.errors import INTERNAL_ERROR, error_body
from pixel.responses import Answer

logger = logging.getLogger(__name__)

# A hot path's GET handler: the ASGI scope and the path's one segment after the prefix.
RawGet = Callable[[Scope, str], Awaitable[Answer]]

HEADERS_TOO_LARGE_ANSWER = Answer(431, HEADERS_TOO_LARGE)
INTERNAL_ERROR_ANSWER = Answer(500, error_body([INTERNAL_ERROR]))


def front_door(app: ASGIApp, *, max_header_bytes: int, raw_gets: Mapping[str, RawGet]) -> ASGIApp:
    """`app` behind the header bound, with `raw_gets` in front: route templates of one
    parameter after a prefix (`/convert/{click_id}`) and their handlers."""
    routes = tuple(
        (template.partition("{")[0], template, handle) for template, handle in raw_gets.items()
    )

    async def door(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            request_ids.begin(scope)
            if headers_too_large(scope, max_header_bytes):
                await _send(send, HEADERS_TOO_LARGE_ANSWER)
                return
            if scope["method"] == "GET":
                path = scope["path"]
                for prefix, template, handle in routes:
                    if path.startswith(prefix):
                        segment = path[len(prefix) :]
                        if segment and "/" not in segment:
                            # As Litestar's router names the routes it matched.
                            scope["path_template"] = template
                            await _send(send, await _answer(handle, scope, segment))
                            return
                        break
        elif scope["type"] == ScopeType.WEBSOCKET:
            # No answer header, but the lines logged while it is open carry the id.
            request_ids.begin(scope)
        await app(scope, receive, send)

    return door


async def _answer(handle: RawGet, scope: Scope, segment: str) -> Answer:
    try:
        return await handle(scope, segment)
    except Exception:
        # As the app's own handler of unexpected errors does: the traceback goes to the
        # log, never to the client.
        logger.exception("unhandled error on GET %s", scope["path"])
        return INTERNAL_ERROR_ANSWER


async def _send(send: Send, answer: Answer) -> None:
    start, body = answer.asgi_messages()
    await send(start)
    await send(body)
