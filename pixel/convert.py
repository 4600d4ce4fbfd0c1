"""`/convert/{click_id}`: the smart pixel.

Thin by design: read the request, call the conversion service, map its outcome to
a status code. Every rule about the parameters lives in the service's input type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from litestar import Request, Response, Router, head, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.types import Scope

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
from models.observers import REFUSED, observer
from models.store.tables import Source
from pixel.admission import admit
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.openapi import PixelOperation
from pixel.query import MAX_QUERY_BYTES, SIGNATURE_PARAMETER, read_parameters
from pixel.rate_limit import RateLimiter
from pixel.responses import (
    PIXEL_PATH_PREFIX,
    Answer,
    errors_answer,
    store_unavailable_answer,
)

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "text/plain")
# A 401 names the scheme it wants (RFC 9110): the fire's `sig` parameter.
SIGNATURE_CHALLENGE = (("WWW-Authenticate", 'Signature realm="pixel", parameter="sig"'),)
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}

PIXEL_ROUTE = "/{click_id:str}"
ClickIdParameter = Annotated[
    str,
    Parameter(
        description="The click's UUID, as handed over by the tracking link. "
        "A malformed value is answered 422, an unknown one 404."
    ),
]


ACCEPTED = Answer(202)
# Reads a POST's form body, or answers why it cannot be read.
FormReader = Callable[[], Awaitable[bytes | Answer]]


def outcome_answer(outcome: Outcome, retry_after_seconds: int) -> Answer:
    match outcome:
        case Recorded() | Duplicate():
            return ACCEPTED
        case Invalid(errors):
            return errors_answer(422, errors)
        case ClickNotFound():
            return errors_answer(
                404, [FieldError("click_id", "not_found", "no click has this {click_id}")]
            )
        case Conflict(message=message):
            return errors_answer(409, [FieldError("transaction_id", "conflict", message)])
        case SignatureRefused(error):
            return errors_answer(401, [error], headers=SIGNATURE_CHALLENGE)
        case StoreUnavailable():
            return store_unavailable_answer(
                "the store cannot take the write now; retry later", retry_after_seconds
            )


async def _form_body(request: Request) -> bytes | Answer:
    """A POST's URL-encoded form, or the answer to a body of another type."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and media_type not in FORM_MEDIA_TYPES:
        return errors_answer(
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
    return body


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


@dataclass(frozen=True)
class Pixel:
    """The pixel's rules for one app; `default_fire_terms` hold fires on clicks without
    a tracking link. `fire` answers GET (through `api/front_door.py` or Litestar),
    POST and HEAD alike."""

    trusted_proxies: TrustedProxies
    retry_after_seconds: int
    limiter: RateLimiter | None
    default_fire_terms: FireTerms

    async def fire(
        self, scope: Scope, click_id: str, *, dry_run: bool, read_form: FormReader | None = None
    ) -> Answer:
        """A fire's answer; `read_form` reads a POST's form body once the request is
        admitted (not rate limited, its query string not too long)."""
        admitted = admit(scope, self.trusted_proxies, self.limiter, what="fires")
        if isinstance(admitted, Answer):
            self._observe(dry_run, REFUSED)
            return admitted
        form = b""
        if read_form is not None:
            form_or_refusal = await read_form()
            if isinstance(form_or_refusal, Answer):
                self._observe(dry_run, REFUSED)
                return form_or_refusal
            form = form_or_refusal
        values, reading_errors = read_parameters(admitted.query, form)
        sig = values.pop(SIGNATURE_PARAMETER, None)
        report = RawConversion(click_id=click_id, **values)
        # Signed as received: HEAD's implied test=true is not part of what was signed.
        fire = PixelFire(FireSignature.of(report, sig), self.default_fire_terms)
        if dry_run:
            report = replace(report, test="true")
        if reading_errors:
            errors = reading_errors + validation_errors(report, reading_errors)
            outcome: Outcome = await judge_invalid_fire(report, fire, errors, now=datetime.now(UTC))
        else:
            outcome = await record_conversion(
                report,
                source=Source.PIXEL,
                metadata=request_metadata(admitted.caller, self.trusted_proxies),
                fire=fire,
            )
        self._observe(dry_run, type(outcome).__name__)
        return outcome_answer(outcome, self.retry_after_seconds)

    @staticmethod
    def _observe(dry_run: bool, outcome: str) -> None:
        # A HEAD's dry run stores nothing: the fires counted are those that could.
        if not dry_run:
            observer().fire_answered(outcome)

    def router(self) -> Router:
        """The pixel's Litestar routes: what OpenAPI describes, and every request the raw
        GET route leaves to the framework (POST, HEAD, OPTIONS, odd paths)."""

        @route(
            PIXEL_ROUTE,
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
            read_form = partial(_form_body, request) if request.method == HttpMethod.POST else None
            answer = await self.fire(request.scope, click_id, dry_run=False, read_form=read_form)
            return answer.response()

        @head(
            PIXEL_ROUTE,
            status_code=202,
            responses=PIXEL_RESPONSES,
            operation_class=PixelOperation,
            summary="Validate a conversion without storing it",
            description="Answers as GET would, with no body, and stores nothing.",
        )
        async def check(request: Request, click_id: ClickIdParameter) -> Response[None]:
            answer = await self.fire(request.scope, click_id, dry_run=True)
            # Litestar insists a HEAD handler's body be typed None; b"" is how none is sent.
            empty: Any = b""
            return Response(content=empty, status_code=answer.status, headers=dict(answer.headers))

        @route(PIXEL_ROUTE, http_method=HttpMethod.OPTIONS, include_in_schema=False)
        async def preflight(click_id: ClickIdParameter) -> Response[bytes]:
            return Response(content=b"", status_code=204, headers=PREFLIGHT_HEADERS)

        # The preflight handler goes first: Litestar adds its own bare OPTIONS handler to
        # a path unless the first handler it registers there already answers OPTIONS.
        return Router(
            path=PIXEL_PATH_PREFIX.rstrip("/"),
            route_handlers=[preflight, fire, check],
            tags=["pixel"],
        )

    async def get(self, scope: Scope, click_id: str) -> Answer:
        """The raw GET route's handler: a fire as Litestar's GET handler answers it."""
        return await self.fire(scope, click_id, dry_run=False)
