"""`GET /track/{tracking_id}`: the tracking link that turns a visit into a click.

Thin like the pixel: read the request, call the tracking service, map its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from litestar import Request, Response, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from models.clicks import SUB_ID_NAMES
from models.conversion_input import FieldError
from models.outcomes import StoreUnavailable
from models.tracking import (
    DEFAULT_CLICK_ID_PARAMETER,
    QUERY_PARAMETER_NAME,
    VISIT_PARAMETERS,
    InvalidVisit,
    RawVisit,
    Redirect,
    TrackingLinkNotFound,
    VisitOutcome,
    follow_tracking_link,
)
from pixel.client_ip import TrustedProxies
from pixel.enrichment import request_metadata
from pixel.query import MAX_QUERY_BYTES, read_parameters
from pixel.routes import ErrorBody, errors_response

TrackingIdParameter = Annotated[
    str,
    Parameter(description="The tracking link's UUID. Unknown or malformed: 404, and no click."),
]


@dataclass(frozen=True, kw_only=True)
class TrackingConfig:
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Used when the landing URL has no `{click_id}` placeholder.
    click_id_parameter: str = DEFAULT_CLICK_ID_PARAMETER
    retry_after_seconds: int = 5

    def __post_init__(self) -> None:
        if not QUERY_PARAMETER_NAME.fullmatch(self.click_id_parameter):
            raise ValueError(
                f"click id parameter {self.click_id_parameter!r}: use 1 to 64 letters, "
                "digits, '_', '-', '.' or '~'"
            )


def visit_response(outcome: VisitOutcome, retry_after_seconds: int) -> Response:
    match outcome:
        case Redirect(location=location):
            return Response(content=b"", status_code=302, headers={"Location": location})
        case TrackingLinkNotFound():
            return errors_response(
                404, [FieldError("tracking_id", "not_found", "no tracking link has this id")]
            )
        case InvalidVisit(errors):
            return errors_response(422, errors)
        case StoreUnavailable():
            return errors_response(
                503,
                [
                    FieldError(
                        None, "store_unavailable", "the click cannot be stored now; retry later"
                    )
                ],
                headers={"Retry-After": str(retry_after_seconds)},
            )
    raise AssertionError(f"unhandled outcome {outcome!r}")


TRACKING_RESPONSES = {
    302: ResponseSpec(None, description="Click created: on to the offer's landing URL"),
    404: ResponseSpec(ErrorBody, description="No tracking link has this id; no click"),
    414: ResponseSpec(ErrorBody, description="The query string exceeds 4 KiB"),
    422: ResponseSpec(ErrorBody, description="Invalid parameters, every bad field named"),
    503: ResponseSpec(ErrorBody, description="The store cannot take the click now: retry later"),
}


def create_tracking_router(config: TrackingConfig) -> Router:
    @get(
        "/{tracking_id:str}",
        status_code=302,
        responses=TRACKING_RESPONSES,
        summary="Follow a tracking link",
        description="Creates a click and redirects to the offer's landing URL with the "
        f"click id added. Optional parameters: type (marketing type), {', '.join(SUB_ID_NAMES)} "
        "(sub ids, at most 255 characters each).",
    )
    async def follow(request: Request, tracking_id: TrackingIdParameter) -> Response:
        query = request.scope["query_string"]
        if len(query) > MAX_QUERY_BYTES:
            too_long = f"the query string exceeds {MAX_QUERY_BYTES} bytes"
            return errors_response(414, [FieldError("query", "too_long", too_long)])
        values, reading_errors = read_parameters(query, names=VISIT_PARAMETERS)
        outcome = await follow_tracking_link(
            RawVisit(
                tracking_id=tracking_id,
                type=values.get("type"),
                sub_ids={name: values[name] for name in SUB_ID_NAMES if name in values},
                unreadable=reading_errors,
            ),
            metadata=request_metadata(request, config.trusted_proxies),
            click_id_parameter=config.click_id_parameter,
        )
        return visit_response(outcome, config.retry_after_seconds)

    return Router(path="/track", route_handlers=[follow], tags=["tracking"])
