"""A bound on request headers, for every route: servers differ in what they allow."""

from __future__ import annotations

from litestar.types import HTTPScope

from models.errors import FieldError, error_body

HEADERS_TOO_LARGE = error_body(
    [FieldError(None, "headers_too_large", "the request headers are too large")]
)


def headers_too_large(scope: HTTPScope, max_bytes: int) -> bool:
    """Whether the request's headers add up to more than `max_bytes` (answered 431)."""
    return sum(len(name) + len(value) for name, value in scope["headers"]) > max_bytes
