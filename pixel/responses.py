"""What the public faces answer besides their successes: JSON errors and shared headers."""

from __future__ import annotations

from litestar import Response

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


def public_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response of a public face carries, errors and 405s included:
    the pixel's are uncached CORS; the tracking link's uncached, so each visit reaches
    us and makes its click."""
    if path.startswith(PIXEL_PATH_PREFIX):
        return PIXEL_HEADERS
    if path.startswith(TRACKING_PATH_PREFIX):
        return TRACKING_HEADERS
    return ()
