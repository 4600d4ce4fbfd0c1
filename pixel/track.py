"""`GET /track/{tracking_id}`: the tracking link that turns a visit into a click.

Thin like the pixel: read the request, call the tracking service, map its outcome.
`HEAD` checks a link as GET would and makes no click: link checkers, mail scanners
and prefetchers send HEAD, and a click must stand for a visitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, Router, get, head, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.types import Scope

from models.clicks.records import SUB_ID_NAMES, SubIds
from models.errors import FieldError, StoreUnavailable
from models.observers import REFUSED, observer
from models.store.tables import MAX_SUB_ID_LENGTH, MarketingType
from models.tracking.visits import (
    InvalidVisit,
    RawVisit,
    Redirect,
    TrackingLinkNotFound,
    VisitChecked,
    VisitOutcome,
    follow_tracking_link,
)
from pixel.admission import admit
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.openapi import error_response, with_query
from pixel.query import QueryParameter, accepted_names, choice, read_parameters, text
from pixel.rate_limit import RateLimiter
from pixel.responses import (
    TRACKING_PATH_PREFIX,
    Answer,
    errors_answer,
    store_unavailable_answer,
)

TrackingIdParameter = Annotated[
    str,
    Parameter(
        description="The tracking link's UUID. Unknown or malformed: 404, and no click.",
        schema_extra={"format": "uuid"},
    ),
]
TRACKING_QUERY = (
    QueryParameter(
        "type",
        "The marketing type the partner tags the visit with, in any case.",
        choice(MarketingType),
    ),
    *(
        QueryParameter(
            name,
            "A partner's sub id, kept with the click; no control characters.",
            text(MAX_SUB_ID_LENGTH),
        )
        for name in SUB_ID_NAMES
    ),
)
VISIT_PARAMETERS = accepted_names(TRACKING_QUERY)


def visit_answer(outcome: VisitOutcome, retry_after_seconds: int) -> Answer:
    match outcome:
        case Redirect(location=location):
            return Answer(302, headers=(("Location", location),))
        case VisitChecked():
            return LINK_WORKS
        case TrackingLinkNotFound():
            return errors_answer(
                404, [FieldError("tracking_id", "not_found", "no tracking link has this id")]
            )
        case InvalidVisit(errors):
            return errors_answer(422, errors)
        case StoreUnavailable():
            return store_unavailable_answer(
                "the click cannot be stored now; retry later", retry_after_seconds
            )


LINK_WORKS = Answer(200)
TRACKING_ERRORS = {
    404: error_response("No tracking link has this id; no click"),
    414: error_response("The query string exceeds 4 KiB"),
    422: error_response("Invalid parameters, every bad field named"),
    429: error_response("Too many visits from one client (when limited)"),
    431: error_response("The request headers are too large"),
    503: error_response("The store cannot take the click now: retry after Retry-After seconds"),
}
TRACKING_ROUTE = "/{tracking_id:str}"
ALLOWED_METHODS = "GET, HEAD, OPTIONS"


@dataclass(frozen=True)
class TrackingLinks:
    """The tracking link's rules for one app. `visit` answers GET, through
    `api/front_door.py` or Litestar."""

    trusted_proxies: TrustedProxies
    click_id_parameter: str
    retry_after_seconds: int
    limiter: RateLimiter | None

    async def visit(self, scope: Scope, tracking_id: str, *, check_only: bool = False) -> Answer:
        admitted = admit(scope, self.trusted_proxies, self.limiter, what="visits")
        if isinstance(admitted, Answer):
            observer().visit_answered(REFUSED)
            return admitted
        values, reading_errors = read_parameters(admitted.query, names=VISIT_PARAMETERS)
        outcome = await follow_tracking_link(
            RawVisit(
                tracking_id=tracking_id,
                type=values.get("type"),
                sub_ids=SubIds(**{name: values[name] for name in SUB_ID_NAMES if name in values}),
                unreadable=reading_errors,
            ),
            metadata=request_metadata(admitted.caller, self.trusted_proxies),
            click_id_parameter=self.click_id_parameter,
            check_only=check_only,
        )
        observer().visit_answered(type(outcome).__name__)
        return visit_answer(outcome, self.retry_after_seconds)

    def router(self) -> Router:
        """The Litestar routes: what OpenAPI describes, HEAD, and the odd paths the raw
        GET route leaves to the framework."""

        @get(
            TRACKING_ROUTE,
            status_code=302,
            responses={
                302: ResponseSpec(None, description="Click created: on to the offer's landing URL"),
                **TRACKING_ERRORS,
            },
            operation_class=with_query(TRACKING_QUERY),
            summary="Follow a tracking link",
            description="Creates a click and redirects to the offer's landing URL with the "
            "click id added. Every parameter at most once; invalid UTF-8 is refused; other "
            "parameters are ignored.",
        )
        async def follow(request: Request, tracking_id: TrackingIdParameter) -> Response:
            return (await self.visit(request.scope, tracking_id)).response()

        @head(
            TRACKING_ROUTE,
            status_code=200,
            responses={
                200: ResponseSpec(None, description="A GET would create a click and redirect"),
                **TRACKING_ERRORS,
            },
            operation_class=with_query(TRACKING_QUERY),
            summary="Check a tracking link without creating a click",
            description="Answers as GET would, except that it creates no click and sends "
            "no redirect: 200 where GET would redirect. For link checkers and prefetchers.",
        )
        async def check(request: Request, tracking_id: TrackingIdParameter) -> Response[None]:
            answer = await self.visit(request.scope, tracking_id, check_only=True)
            # Litestar insists a HEAD handler's body be typed None; b"" is how none is sent.
            empty: Any = b""
            return Response(content=empty, status_code=answer.status, headers=dict(answer.headers))

        @route(TRACKING_ROUTE, http_method=HttpMethod.OPTIONS, include_in_schema=False)
        async def options(tracking_id: TrackingIdParameter) -> Response[bytes]:
            return Response(content=b"", status_code=204, headers={"Allow": ALLOWED_METHODS})

        # The OPTIONS handler goes first: Litestar 2 builds its own from the methods of
        # the first handler registered on a path, and would leave HEAD out of Allow.
        return Router(
            path=TRACKING_PATH_PREFIX.rstrip("/"),
            route_handlers=[options, follow, check],
            tags=["tracking"],
        )
