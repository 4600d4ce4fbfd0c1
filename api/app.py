"""The one app factory: `create_app()` composes the pixel, GraphQL, the probes and the store."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message, Scope

from api import request_ids
from api.front_door import front_door
from api.graphql_http import documented_graphql
from api.health import healthz, readyz
from api.logs import app_logging_config, redact_access_log
from api.metrics import MetricsObserver, count_response, metrics_route, worker_metrics
from api.openapi import openapi_config, swagger_ui_assets
from api.settings import Settings
from models.errors import INTERNAL_ERROR, FieldError, error_body
from models.observers import Observer, listen
from models.postbacks.dispatcher import Dispatcher
from models.rejections.log import RejectionLog
from models.rejections.pruning import Pruner
from models.store.engine import close_store, current_engine, open_store
from pixel.convert import Pixel
from pixel.enrichment import load_country_data
from pixel.rate_limit import optional_limiter
from pixel.responses import PIXEL_PATH_PREFIX, TRACKING_PATH_PREFIX, public_headers
from pixel.script import pixel_script, pixel_script_headers
from pixel.track import TrackingLinks
from schema.context import GraphQLLimits, make_context_getter
from schema.errors import GraphQLHTTPError, graphql_error_body
from schema.root import schema
from schema.sockets import graphql_controller as keyed_graphql_controller

logger = logging.getLogger(__name__)


NOSNIFF = (b"x-content-type-options", b"nosniff")


async def add_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook, one for every response (the framework's own 404, 405 and 431
    included): the public faces' headers, the request's id, and nosniff, so no response
    may be read as another type than it declares (a JSON error echoing a parameter,
    sniffed as HTML, would run its script). One hook and one pass over the headers: it
    runs on every fire."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", ()))
    names = {name.lower() for name, _ in headers}
    headers.extend(
        header for header in (*public_headers(scope["path"]), NOSNIFF) if header[0] not in names
    )
    # GraphQL's answers already carry it (schema/hardening.py sets the same id).
    if (request_id := request_ids.current()) is not None and request_ids.HEADER not in names:
        headers.append((request_ids.HEADER, request_id.encode()))
    message["headers"] = headers


def _error(status_code: int, error: FieldError, headers: dict[str, str] | None) -> Response:
    return Response(
        error_body([error]),
        status_code=status_code,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _http_error(_: Request, error: HTTPException) -> Response:
    if isinstance(error, GraphQLHTTPError):
        # GraphQL clients read every error, HTTP ones included, as GraphQL errors.
        body = graphql_error_body(error.detail, error.code)
        return Response(body, status_code=error.status_code, headers=error.headers)
    code = "unauthorized" if error.status_code == HTTP_401_UNAUTHORIZED else "http_error"
    return _error(error.status_code, FieldError(None, code, error.detail), error.headers)


def _internal_error(request: Request, error: Exception) -> Response:
    # The traceback goes to the log, never to the client.
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return _error(HTTP_500_INTERNAL_SERVER_ERROR, INTERNAL_ERROR, None)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    engine = current_engine()

    @asynccontextmanager
    async def store_lifespan(_: Litestar) -> AsyncIterator[None]:
        await open_store(
            engine,
            pool_min_size=settings.database_pool_min_size,
            pool_max_size=settings.database_pool_max_size,
        )
        # Every worker sends postbacks; claims keep each delivery to one at a time.
        dispatcher = Dispatcher(settings.dispatch_policy)
        await dispatcher.start()
        # Every worker prunes old rejected fires now and then: no cron to set up.
        pruner = Pruner(settings.fire_rejection_retention)
        pruner.start()
        try:
            yield
        finally:
            await pruner.stop()
            await dispatcher.stop()
            await close_store(engine)

    graphql_controller = keyed_graphql_controller(
        schema,
        retry_after_seconds=settings.retry_after_seconds,
        context_getter=make_context_getter(
            GraphQLLimits(
                max_depth=settings.graphql_max_depth,
                max_aliases=settings.graphql_max_aliases,
                max_tokens=settings.graphql_max_tokens,
                max_page_size=settings.graphql_max_page_size,
                max_cost=settings.graphql_max_cost,
                timeout_seconds=settings.graphql_timeout_seconds,
                subscription_queue_size=settings.graphql_subscription_queue_size,
            ),
            dev=settings.conversions_dev,
            retry_after_seconds=settings.retry_after_seconds,
            postbacks=settings.dispatch_policy.send,
            request_id=request_ids.current_or_new,
        ),
        graphql_ide="graphiql" if settings.conversions_dev else None,
        # Queries over GET are harmless (Strawberry refuses mutations over GET) and cacheable.
        allow_queries_via_get=True,
    )

    # The hooks of models/ and the faces count into the metrics, or go nowhere.
    listen(MetricsObserver() if settings.metrics_enabled else Observer())
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics = [metrics_route(metrics_token)] if settings.metrics_enabled else []

    def load_enrichment_data() -> None:
        # Once, before the first request, rather than on the first browser fire.
        load_country_data(settings.geoip_data_file)
        # What start-up built lives as long as the process: exempt from the garbage
        # collector, whose full passes over it would otherwise stall requests ~20 ms.
        gc.freeze()

    pixel = Pixel(
        trusted_proxies=settings.proxies,
        retry_after_seconds=settings.retry_after_seconds,
        limiter=optional_limiter(settings.pixel_rate_limit_per_minute),
        default_fire_terms=settings.default_fire_terms,
        rejections=RejectionLog(settings.rejection_cap()),
    )
    tracking_links = TrackingLinks(
        trusted_proxies=settings.proxies,
        click_id_parameter=settings.click_id_parameter,
        retry_after_seconds=settings.retry_after_seconds,
        limiter=optional_limiter(settings.track_rate_limit_per_minute),
    )
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            pixel.router(),
            tracking_links.router(),
            pixel_script,
            pixel_script_headers,
            documented_graphql(graphql_controller),
            swagger_ui_assets(),
            *metrics,
        ],
        on_startup=[load_enrichment_data, redact_access_log],
        lifespan=[store_lifespan, *([worker_metrics] if metrics else [])],
        before_send=[add_headers, *([count_response] if metrics else [])],
        exception_handlers={
            HTTPException: _http_error,
            HTTP_500_INTERNAL_SERVER_ERROR: _internal_error,
        },
        openapi_config=openapi_config(title="Conversion API", version="0.1.0"),
        request_max_body_size=settings.max_request_body_bytes,
        # Unexpected errors are logged once, by _internal_error, with their traceback.
        logging_config=app_logging_config(settings.log_format, settings.log_level),
        debug=settings.conversions_dev,
    )
    # Litestar's entry point (lifespan, scope, before_send) stays; behind it, the front
    # door answers the hot paths' GETs before the router sees them (api/front_door.py).
    app.asgi_handler = front_door(
        app.asgi_handler,
        max_header_bytes=settings.max_request_header_bytes,
        raw_gets={
            f"{PIXEL_PATH_PREFIX}{{click_id}}": pixel.get,
            f"{TRACKING_PATH_PREFIX}{{tracking_id}}": tracking_links.visit,
        },
    )
    return app
