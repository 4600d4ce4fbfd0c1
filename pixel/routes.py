"""`/convert/{click_id}`: the smart pixel.

Thin by design: read the request, call the conversion service, map its outcome to
a status code. Every rule about the parameters lives in the service's input type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import msgspec
from litestar import Request, Response, Router, head, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.types import Message, Scope

from models.conversion_input import FieldError, RawConversion, validation_errors
from models.conversion_service import record_conversion
from models.outcomes import (
    ClickNotFound,
    Conflict,
    Duplicate,
    Invalid,
    Outcome,
    Recorded,
    StoreUnavailable,
)
from models.tables import Source
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.openapi import PixelOperation
from pixel.query import MAX_QUERY_BYTES, read_parameters
from pixel.rate_limit import RateLimiter

PIXEL_PATH_PREFIX = "/convert/"
TRACKING_PATH_PREFIX = "/track/"
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "text/plain")
PIXEL_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"access-control-allow-origin", b"*"),
)
TRACKING_HEADERS = ((b"cache-control", b"no-store"),)
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}

ClickIdParameter = Annotated[
    str,
    Parameter(
        description="The click's UUID, as handed over by the tracking link. "
        "A malformed value is answered 422, an unknown one 404."
    ),
]


@dataclass(frozen=True, kw_only=True)
class PixelConfig:
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    retry_after_seconds: int = 5
    # Fires per client address per minute and worker process; 0 turns the limit off.
    rate_limit_per_minute: int = 0


class ErrorBody(msgspec.Struct):
    errors: list[FieldError]


def errors_response(
    status_code: int, errors: list[FieldError], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=msgspec.json.encode(ErrorBody(errors)),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def _accepted() -> Response[bytes]:
    return Response(content=b"", status_code=202)


def outcome_response(outcome: Outcome, retry_after_seconds: int) -> Response:
    match outcome:
        case Recorded() | Duplicate():
            return _accepted()
        case Invalid(errors):
            return errors_response(422, errors)
        case ClickNotFound():
            return errors_response(
                404, [FieldError("click_id", "not_found", "no click has this click_id")]
            )
        case Conflict(message=message):
            return errors_response(409, [FieldError("transaction_id", "conflict", message)])
        case StoreUnavailable():
            return errors_response(
                503,
                [
                    FieldError(
                        None,
                        "store_unavailable",
                        "the store cannot take the write now; retry later",
                    )
                ],
                headers={"Retry-After": str(retry_after_seconds)},
            )
    raise AssertionError(f"unhandled outcome {outcome!r}")


async def add_pixel_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: every pixel response, errors and 405s included, is uncached CORS;
    every tracking-link response is uncached, so each visit reaches us and makes its click."""
    if message["type"] != "http.response.start":
        return
    path = scope["path"]
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


def _rate_limited(
    request: Request, config: PixelConfig, limiter: RateLimiter | None
) -> Response | None:
    if limiter is None:
        return None
    peer = request.client.host if request.client else None
    client = config.trusted_proxies.client_ip(peer, request.headers.get("x-forwarded-for"))
    retry_after = limiter.retry_after(client or "unknown")
    if retry_after is None:
        return None
    return errors_response(
        429,
        [FieldError(None, "rate_limited", "too many fires from this address; retry later")],
        headers={"Retry-After": str(retry_after)},
    )


async def _fire(
    request: Request,
    click_id: str,
    config: PixelConfig,
    limiter: RateLimiter | None,
    *,
    dry_run: bool,
) -> Response:
    if limited := _rate_limited(request, config, limiter):
        return limited
    query = request.scope["query_string"]
    if len(query) > MAX_QUERY_BYTES:
        too_long = f"the query string exceeds {MAX_QUERY_BYTES} bytes"
        return errors_response(414, [FieldError("query", "too_long", too_long)])
    parts = [query]
    if request.method == HttpMethod.POST:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and media_type not in FORM_MEDIA_TYPES:
            return errors_response(
                415,
                [
                    FieldError(
                        "body",
                        "unsupported_media_type",
                        "send parameters in the query string or as "
                        "application/x-www-form-urlencoded (URLSearchParams)",
                    )
                ],
            )
        parts.append(body)
    values, reading_errors = read_parameters(*parts)
    if dry_run:
        values["test"] = "true"
    report = RawConversion(click_id=click_id, **values)
    if reading_errors:
        return errors_response(422, reading_errors + validation_errors(report, reading_errors))
    outcome = await record_conversion(
        report,
        source=Source.PIXEL,
        metadata=request_metadata(request, config.trusted_proxies),
    )
    return outcome_response(outcome, config.retry_after_seconds)


PIXEL_RESPONSES = {
    202: ResponseSpec(None, description="Recorded, or an exact repeat of a recorded conversion"),
    404: ResponseSpec(ErrorBody, description="No click has this click_id"),
    409: ResponseSpec(ErrorBody, description="A deposit reused a transaction_id with other values"),
    413: ResponseSpec(ErrorBody, description="A POST body over 4 KiB"),
    414: ResponseSpec(ErrorBody, description="The query string exceeds 4 KiB"),
    415: ResponseSpec(ErrorBody, description="A POST body that is not a URL-encoded form"),
    422: ResponseSpec(ErrorBody, description="Invalid parameters, every bad field named"),
    429: ResponseSpec(ErrorBody, description="Too many fires from one address (when limited)"),
    503: ResponseSpec(ErrorBody, description="The store cannot take the write now: retry later"),
}


def create_pixel_router(config: PixelConfig) -> Router:
    limiter = RateLimiter(config.rate_limit_per_minute) if config.rate_limit_per_minute else None

    @route(
        "/{click_id:str}",
        http_method=[HttpMethod.GET, HttpMethod.POST],
        status_code=202,
        request_max_body_size=MAX_QUERY_BYTES,
        responses=PIXEL_RESPONSES,
        operation_class=PixelOperation,
        summary="Record a conversion (smart pixel)",
        description="Parameters go in the query string or, for POST, a URL-encoded form "
        "body: type (install|registration|deposit), test, player_id, currency, amount, "
        "time, transaction_id. 202 means the conversion is durably stored.",
    )
    async def fire(request: Request, click_id: ClickIdParameter) -> Response:
        return await _fire(request, click_id, config, limiter, dry_run=False)

    @head(
        "/{click_id:str}",
        status_code=202,
        responses=PIXEL_RESPONSES,
        operation_class=PixelOperation,
        summary="Validate a conversion without storing it",
        description="Answers as GET would, with no body, and stores nothing.",
    )
    async def check(request: Request, click_id: ClickIdParameter) -> Response[None]:
        response = await _fire(request, click_id, config, limiter, dry_run=True)
        return Response(content=b"", status_code=response.status_code, headers=response.headers)

    @route("/{click_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def preflight(click_id: ClickIdParameter) -> Response[None]:
        return Response(content=b"", status_code=204, headers=PREFLIGHT_HEADERS)

    # The preflight handler goes first: Litestar adds its own bare OPTIONS handler to a
    # path unless the first handler it registers there already answers OPTIONS.
    return Router(path="/convert", route_handlers=[preflight, fire, check], tags=["pixel"])
