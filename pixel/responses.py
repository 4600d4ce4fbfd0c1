"""What the public faces answer besides their successes: JSON errors and shared headers."""

from __future__ import annotations

from litestar import Response
from litestar.types import Message, Scope

from models.errors import FieldError, error_body

PIXEL_PATH_PREFIX = "/convert/"
TRACKING_PATH_PREFIX = "/track/"
PIXEL_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"access-control-allow-origin", b"*"),
)
TRACKING_HEADERS = ((b"cache-control", b"no-store"),)


def errors_response(
    status_code: int, errors: list[FieldError], headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=error_body(errors),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def store_unavailable_response(message: str, retry_after_seconds: int) -> Response[bytes]:
    return errors_response(
        503,
        [FieldError(None, "store_unavailable", message)],
        headers={"Retry-After": str(retry_after_seconds)},
    )


def query_too_long_response(max_bytes: int) -> Response[bytes]:
    message = f"the query string exceeds {max_bytes} bytes"
    return errors_response(414, [FieldError("query", "too_long", message)])


async def add_public_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: every pixel response, errors and 405s included, is uncached CORS;
    every tracking-link response is uncached, so each visit reaches us and makes its click."""
    if message["type"] != "http.response.start":
        return
    path = scope["path"]
    added: tuple[tuple[bytes, bytes], ...]
    if path.startswith(PIXEL_PATH_PREFIX):
        added = PIXEL_HEADERS
    elif path.startswith(TRACKING_PATH_PREFIX):
        added = TRACKING_HEADERS
    else:
        return
    headers = list(message.get("headers", ()))
    names = {name.lower() for name, _ in headers}
    headers.extend(header for header in added if header[0] not in names)
    message["headers"] = headers
