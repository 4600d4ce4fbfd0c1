"""`/convert/{click_id}`: the smart pixel.

Thin by design: read the request, call the conversion service, map its outcome to
a status code. Every rule about the parameters lives in the service's input type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from litestar import Request, Response, Router, get, head, post, route
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
    Refused,
    SignatureRefused,
)
from models.conversions.service import judge_invalid_fire, record_conversion
from models.conversions.signatures import (
    SIGNATURE_PARAMETER,
    FireSignature,
    FireTerms,
    PixelFire,
)
from models.errors import FieldError, StoreUnavailable
from models.observers import REFUSED, observer
from models.rejections.log import RejectedFire, RejectionLog
from models.store.tables import Source
from pixel.admission import Admitted, admit
from pixel.client_ip import TrustedProxies
from pixel.enrichment import client_address, request_metadata, request_origin
from pixel.openapi import error_response, form_body, with_query
from pixel.query import MAX_QUERY_BYTES, PIXEL_QUERY, read_parameters
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
        "A malformed value is answered 422, an unknown one 404.",
        # Read as a string so that a malformed one is a 422 naming it, not a routing 404.
        schema_extra={"format": "uuid"},
    ),
]


ACCEPTED = Answer(202)
# Reads a POST's form body, or answers why it cannot be read.
FormReader = Callable[[], Awaitable[bytes | Answer]]


# The answers the log of rejected fires keeps (models/rejections/).
LOGGED_STATUSES = frozenset({401, 404, 409, 422})
CLICK_NOT_FOUND = FieldError("click_id", "not_found", "no click has this {click_id}")


def refusal(outcome: Refused) -> tuple[int, list[FieldError]]:
    """A refused fire's status and errors."""
    match outcome:
        case Invalid(errors):
            return 422, errors
        case ClickNotFound():
            return 404, [CLICK_NOT_FOUND]
        case Conflict(message=message):
            return 409, [FieldError("transaction_id", "conflict", message)]
        case SignatureRefused(error):
            return 401, [error]


def outcome_answer(outcome: Outcome, retry_after_seconds: int) -> Answer:
    match outcome:
        case Recorded() | Duplicate():
            return ACCEPTED
        case SignatureRefused():
            return errors_answer(*refusal(outcome), headers=SIGNATURE_CHALLENGE)
        case Invalid() | ClickNotFound() | Conflict():
            return errors_answer(*refusal(outcome))
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
    401: error_response("The offer needs a signature the fire lacks, or sig is wrong"),
    404: error_response("No click has this click_id"),
    409: error_response("A deposit reused a transaction_id with other values"),
    414: error_response("The query string exceeds 4 KiB"),
    422: error_response("Invalid parameters, every bad field named"),
    429: error_response("Too many fires from one address (when limited)"),
    431: error_response("The request headers are too large"),
    503: error_response("The store cannot take the write now: retry after Retry-After seconds"),
}
PIXEL_FORM_RESPONSES = {
    **PIXEL_RESPONSES,
    413: error_response("A POST body over 4 KiB"),
    415: error_response("A POST body that is not a URL-encoded form"),
}
PIXEL_DESCRIPTION = (
    "202 means the conversion is durably stored. Rules OpenAPI cannot say: currency and "
    "amount only on deposits and only together; time not more than 5 minutes before the "
    "click; every parameter at most once, invalid UTF-8 refused; other parameters ignored."
)


@dataclass(frozen=True)
class Pixel:
    """The pixel's rules for one app; `default_fire_terms` hold fires on clicks without
    a tracking link. `fire` answers GET (through `api/front_door.py` or Litestar),
    POST and HEAD alike."""

    trusted_proxies: TrustedProxies
    retry_after_seconds: int
    limiter: RateLimiter | None
    default_fire_terms: FireTerms
    # Where refused fires are logged (FIRE_REJECTIONS_PER_* settings); HEAD's are not.
    rejections: RejectionLog

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
            report = report.as_test()
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
        answer = outcome_answer(outcome, self.retry_after_seconds)
        # One look at the status: all a 202 pays. A dry run (HEAD) stores nothing, its
        # refusal included.
        if answer.status in LOGGED_STATUSES and not dry_run:
            self._log_rejection(outcome, click_id, admitted, form)
        return answer

    def _log_rejection(
        self, outcome: Outcome, click_id: str, admitted: Admitted, form: bytes
    ) -> None:
        """Leave a refusal for the integrator to read (fireRejections), under the cap."""
        match outcome:
            case ClickNotFound():
                owner = None
            case Invalid() | Conflict() | SignatureRefused():
                owner = outcome.owner
            case _:
                return
        # The cap first, so that a flood past it costs a dictionary look-up per fire.
        offer_id = None if owner is None else owner.offer_id
        if not self.rejections.admits(
            offer_id, client_address(admitted.caller, self.trusted_proxies)
        ):
            return
        status, errors = refusal(outcome)
        origin = request_origin(admitted.caller, self.trusted_proxies)
        self.rejections.log(
            RejectedFire(
                status=status,
                errors=errors,
                click_id=click_id,
                owner=owner,
                encoded_parameters=(admitted.query, form),
                ip=origin.ip,
                user_agent=origin.user_agent,
                referrer=origin.referrer,
            )
        )

    @staticmethod
    def _observe(dry_run: bool, outcome: str) -> None:
        # A HEAD's dry run stores nothing: the fires counted are those that could.
        if not dry_run:
            observer().fire_answered(outcome)

    def router(self) -> Router:
        """The pixel's Litestar routes: what OpenAPI describes, and every request the raw
        GET route leaves to the framework (POST, HEAD, OPTIONS, odd paths)."""

        @get(
            PIXEL_ROUTE,
            status_code=202,
            responses=PIXEL_RESPONSES,
            operation_class=with_query(PIXEL_QUERY),
            summary="Record a conversion (smart pixel)",
            description=PIXEL_DESCRIPTION,
        )
        async def fire(request: Request, click_id: ClickIdParameter) -> Response:
            # Plain GETs are answered by api/front_door.py; this one serves the odd paths.
            answer = await self.fire(request.scope, click_id, dry_run=False)
            return answer.response()

        @post(
            PIXEL_ROUTE,
            status_code=202,
            request_max_body_size=MAX_QUERY_BYTES,
            responses=PIXEL_FORM_RESPONSES,
            operation_class=with_query(
                PIXEL_QUERY,
                body=form_body(
                    PIXEL_QUERY,
                    "The parameters as a URL-encoded form (navigator.sendBeacon with "
                    "URLSearchParams), instead of or beside the query string: each at most "
                    "once across both; type is required in one of them.",
                ),
            ),
            summary="Record a conversion from a form (smart pixel, sendBeacon)",
            description=PIXEL_DESCRIPTION,
        )
        async def fire_form(request: Request, click_id: ClickIdParameter) -> Response:
            read_form = partial(_form_body, request)
            answer = await self.fire(request.scope, click_id, dry_run=False, read_form=read_form)
            return answer.response()

        @head(
            PIXEL_ROUTE,
            status_code=202,
            responses=PIXEL_RESPONSES,
            operation_class=with_query(PIXEL_QUERY),
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
            route_handlers=[preflight, fire, fire_form, check],
            tags=["pixel"],
        )

    async def get(self, scope: Scope, click_id: str) -> Answer:
        """The raw GET route's handler: a fire as Litestar's GET handler answers it."""
        return await self.fire(scope, click_id, dry_run=False)
