"""`/convert/{click_id}`: the smart pixel.

Thin by design: read the request, call the conversion service, map its outcome to
a status code. Every rule about the parameters lives in the service's input type.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, head, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from models.conversions.input import RawConversion, validation_errors
from models.conversions.outcomes import (
    ClickNotFound,
    Conflict,
    Duplicate,
    Invalid,
    Outcome,
    Recorded,
    SignatureRefused,
)
from models.conversions.service import judge_invalid_fire, record_conversion
from models.conversions.signatures import FireSignature, FireTerms, PixelFire
from models.errors import ErrorBody, FieldError, StoreUnavailable
from models.store.tables import Source
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.openapi import PixelOperation
from pixel.query import MAX_QUERY_BYTES, SIGNATURE_PARAMETER, read_parameters
from pixel.rate_limit import RateLimiter, rate_limited
from pixel.responses import errors_response, query_too_long_response, store_unavailable_response

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "text/plain")
# A 401 names the scheme it wants (RFC 9110): the fire's `sig` parameter.
SIGNATURE_CHALLENGE = {"WWW-Authenticate": 'Signature realm="pixel", parameter="sig"'}
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
                404, [FieldError("click_id", "not_found", "no click has this {click_id}")]
            )
        case Conflict(message=message):
            return errors_response(409, [FieldError("transaction_id", "conflict", message)])
        case SignatureRefused(error):
            return errors_response(401, [error], headers=SIGNATURE_CHALLENGE)
        case StoreUnavailable():
            return store_unavailable_response(
                "the store cannot take the write now; retry later", retry_after_seconds
            )


async def _parameters(request: Request) -> tuple[dict[str, str], list[FieldError]] | Response:
    """The fire's parameters and the errors of reading them, or the answer to a request
    whose parameters cannot be read."""
    query = request.scope["query_string"]
    if len(query) > MAX_QUERY_BYTES:
        return query_too_long_response(MAX_QUERY_BYTES)
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
    return read_parameters(*parts)


PIXEL_RESPONSES = {
    202: ResponseSpec(None, description="Recorded, or an exact repeat of a recorded conversion"),
    401: ResponseSpec(
        ErrorBody, description="The offer needs a signature the fire lacks, or sig is wrong"
    ),
    404: ResponseSpec(ErrorBody, description="No click has this click_id"),
    409: ResponseSpec(ErrorBody, description="A deposit reused a transaction_id with other values"),
    413: ResponseSpec(ErrorBody, description="A POST body over 4 KiB"),
    414: ResponseSpec(ErrorBody, description="The query string exceeds 4 KiB"),
    415: ResponseSpec(ErrorBody, description="A POST body that is not a URL-encoded form"),
    422: ResponseSpec(ErrorBody, description="Invalid parameters, every bad field named"),
    429: ResponseSpec(ErrorBody, description="Too many fires from one address (when limited)"),
    503: ResponseSpec(ErrorBody, description="The store cannot take the write now: retry later"),
}


def create_pixel_router(
    *,
    trusted_proxies: TrustedProxies,
    retry_after_seconds: int,
    rate_limit_per_minute: int,
    default_fire_terms: FireTerms,
) -> Router:
    """The pixel; `default_fire_terms` hold fires on clicks without a tracking link."""
    limiter = RateLimiter(rate_limit_per_minute) if rate_limit_per_minute else None

    async def record(request: Request, click_id: str, *, dry_run: bool) -> Response:
        if limited := rate_limited(request, trusted_proxies, limiter, what="fires"):
            return limited
        parameters = await _parameters(request)
        if isinstance(parameters, Response):
            return parameters
        values, reading_errors = parameters
        sig = values.pop(SIGNATURE_PARAMETER, None)
        report = RawConversion(click_id=click_id, **values)
        # Signed as received: HEAD's implied test=true is not part of what was signed.
        fire = PixelFire(FireSignature.of(report, sig), default_fire_terms)
        if dry_run:
            report = replace(report, test="true")
        if reading_errors:
            errors = reading_errors + validation_errors(report, reading_errors)
            outcome: Outcome = await judge_invalid_fire(report, fire, errors, now=datetime.now(UTC))
        else:
            outcome = await record_conversion(
                report,
                source=Source.PIXEL,
                metadata=request_metadata(request, trusted_proxies),
                fire=fire,
            )
        return outcome_response(outcome, retry_after_seconds)

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
        "time, transaction_id, and sig when the offer asks for signed fires. "
        "202 means the conversion is durably stored.",
    )
    async def fire(request: Request, click_id: ClickIdParameter) -> Response:
        return await record(request, click_id, dry_run=False)

    @head(
        "/{click_id:str}",
        status_code=202,
        responses=PIXEL_RESPONSES,
        operation_class=PixelOperation,
        summary="Validate a conversion without storing it",
        description="Answers as GET would, with no body, and stores nothing.",
    )
    async def check(request: Request, click_id: ClickIdParameter) -> Response[None]:
        response = await record(request, click_id, dry_run=True)
        # Litestar insists a HEAD handler's body be typed None; b"" is how none is sent.
        empty: Any = b""
        return Response(content=empty, status_code=response.status_code, headers=response.headers)

    @route("/{click_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def preflight(click_id: ClickIdParameter) -> Response[bytes]:
        return Response(content=b"", status_code=204, headers=PREFLIGHT_HEADERS)

    # The preflight handler goes first: Litestar adds its own bare OPTIONS handler to a
    # path unless the first handler it registers there already answers OPTIONS.
    return Router(path="/convert", route_handlers=[preflight, fire, check], tags=["pixel"])
