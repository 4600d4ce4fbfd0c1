"""`GET /track/{tracking_id}`: the tracking link that turns a visit into a click.

Thin like the pixel: read the request, call the tracking service, map its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Request, Response, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.types import Scope

from models.clicks.records import SUB_ID_NAMES, SubIds
from models.errors import ErrorBody, FieldError, StoreUnavailable
from models.observers import REFUSED, observer
from models.tracking.visits import (
    VISIT_PARAMETERS,
    InvalidVisit,
    RawVisit,
    Redirect,
    TrackingLinkNotFound,
    VisitOutcome,
    follow_tracking_link,
)
from pixel.admission import admit
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.query import read_parameters
from pixel.rate_limit import RateLimiter
from pixel.responses import (
    TRACKING_PATH_PREFIX,
    Answer,
    errors_answer,
    store_unavailable_answer,
)

TrackingIdParameter = Annotated[
    str,
    Parameter(description="The tracking link's UUID. Unknown or malformed: 404, and no click."),
]


def visit_answer(outcome: VisitOutcome, retry_after_seconds: int) -> Answer:
    match outcome:
        case Redirect(location=location):
            return Answer(302, headers=(("Location", location),))
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


TRACKING_RESPONSES = {
    302: ResponseSpec(None, description="Click created: on to the offer's landing URL"),
    404: ResponseSpec(ErrorBody, description="No tracking link has this id; no click"),
    414: ResponseSpec(ErrorBody, description="The query string exceeds 4 KiB"),
    422: ResponseSpec(ErrorBody, description="Invalid parameters, every bad field named"),
    429: ResponseSpec(ErrorBody, description="Too many visits from one client (when limited)"),
    503: ResponseSpec(ErrorBody, description="The store cannot take the click now: retry later"),
}


@dataclass(frozen=True)
class TrackingLinks:
    """The tracking link's rules for one app. `visit` answers GET, through
    `api/front_door.py` or Litestar."""

    trusted_proxies: TrustedProxies
    click_id_parameter: str
    retry_after_seconds: int
    limiter: RateLimiter | None

    async def visit(self, scope: Scope, tracking_id: str) -> Answer:
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
        )
        observer().visit_answered(type(outcome).__name__)
        return visit_answer(outcome, self.retry_after_seconds)

    def router(self) -> Router:
        """The Litestar route: what OpenAPI describes, and the odd paths the raw GET
        route leaves to the framework."""

        @get(
            "/{tracking_id:str}",
            status_code=302,
            responses=TRACKING_RESPONSES,
            summary="Follow a tracking link",
            description="Creates a click and redirects to the offer's landing URL with the "
            f"click id added. Optional parameters: type (marketing type), "
            f"{', '.join(SUB_ID_NAMES)} (sub ids, at most 255 characters each).",
        )
        async def follow(request: Request, tracking_id: TrackingIdParameter) -> Response:
            return (await self.visit(request.scope, tracking_id)).response()

        return Router(
            path=TRACKING_PATH_PREFIX.rstrip("/"), route_handlers=[follow], tags=["tracking"]
        )
