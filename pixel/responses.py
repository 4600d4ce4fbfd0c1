"""What the public faces answer, as plain values: a status, JSON error bodies, headers.

An `Answer` belongs to no framework: the Litestar handlers turn it into a `Response`,
and the raw GET routes of `api/front_door.py` send it as two ASGI messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import MediaType, Response
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent

from models.errors import FieldError, error_body

PIXEL_PATH_PREFIX = "/convert/"
TRACKING_PATH_PREFIX = "/track/"
PIXEL_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"access-control-allow-origin", b"*"),
)
TRACKING_HEADERS = ((b"cache-control", b"no-store"),)
# Every answer of the faces declares JSON, the empty ones included, as Litestar's do.
JSON_CONTENT_TYPE = (b"content-type", MediaType.JSON.value.encode())


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> Response[bytes]:
        """As a Litestar handler returns it."""
        return Response(
            content=self.body,
            status_code=self.status,
            media_type=MediaType.JSON,
            headers=dict(self.headers),
        )

    def asgi_messages(self) -> tuple[HTTPResponseStartEvent, HTTPResponseBodyEvent]:
        """As a raw ASGI route sends it; header values are Latin-1, as HTTP's are."""
        headers = [
            JSON_CONTENT_TYPE,
            (b"content-length", b"%d" % len(self.body)),
            *((name.lower().encode(), value.encode("latin-1")) for name, value in self.headers),
        ]
        return (
            {"type": "http.response.start", "status": self.status, "headers": headers},
            {"type": "http.response.body", "body": self.body, "more_body": False},
        )


def errors_answer(
    status: int, errors: list[FieldError], headers: tuple[tuple[str, str], ...] = ()
) -> Answer:
    return Answer(status, error_body(errors), headers)


def store_unavailable_answer(message: str, retry_after_seconds: int) -> Answer:
    return errors_answer(
        503,
        [FieldError(None, "store_unavailable", message)],
        headers=(("Retry-After", str(retry_after_seconds)),),
    )


def query_too_long_answer(max_bytes: int) -> Answer:
    message = f"the query string exceeds {max_bytes} bytes"
    return errors_answer(414, [FieldError("query", "too_long", message)])


def public_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response of a public face carries, errors and 405s included:
    the pixel's are uncached CORS; the tracking link's uncached, so each visit reaches
    us and makes its click."""
    if path.startswith(PIXEL_PATH_PREFIX):
        return PIXEL_HEADERS
    if path.startswith(TRACKING_PATH_PREFIX):
        return TRACKING_HEADERS
    return ()
