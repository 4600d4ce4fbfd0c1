"""The one app factory: `create_app()` composes the pixel, GraphQL, the probes and the store."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.logging.config import LoggingConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_500_INTERNAL_SERVER_ERROR
from strawberry.litestar import make_graphql_controller

from api.health import healthz, readyz
from api.limits import header_size_limit
from api.settings import Settings
from models.database import close_store, open_store
from models.tables import Conversion
from pixel.enrichment import load_country_data
from pixel.routes import add_pixel_headers, create_pixel_router
from pixel.script import pixel_script
from pixel.tracking import create_tracking_router
from schema.context import make_context_getter
from schema.root import schema

logger = logging.getLogger(__name__)


def _http_error(_: Request, error: HTTPException) -> Response:
    return Response(
        {"errors": [{"field": None, "code": "http_error", "message": error.detail}]},
        status_code=error.status_code,
        headers=error.headers,
        media_type=MediaType.JSON,
    )


def _unauthorized(_: Request, error: HTTPException) -> Response:
    return Response(
        {"errors": [{"field": None, "code": "unauthorized", "message": error.detail}]},
        status_code=error.status_code,
        headers=error.headers,
        media_type=MediaType.JSON,
    )


def _internal_error(request: Request, error: Exception) -> Response:
    # The traceback goes to the log, never to the client.
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return Response(
        {"errors": [{"field": None, "code": "internal_error", "message": "internal server error"}]},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    engine = Conversion._meta.db

    @asynccontextmanager
    async def store_lifespan(_: Litestar) -> AsyncIterator[None]:
        await open_store(engine, settings.database)
        try:
            yield
        finally:
            await close_store(engine)

    graphql_controller = make_graphql_controller(
        schema,
        path="/graphql",
        context_getter=make_context_getter(
            settings.graphql,
            dev=settings.dev,
            retry_after_seconds=settings.pixel.retry_after_seconds,
        ),
        graphql_ide="graphiql" if settings.dev else None,
        # Queries over GET are harmless (Strawberry refuses mutations over GET) and cacheable.
        allow_queries_via_get=True,
        # No subscriptions: no websocket protocol to keep open.
        subscription_protocols=(),
    )

    def load_enrichment_data() -> None:
        # Once, before the first request, rather than on the first browser fire.
        load_country_data(settings.country_data_file)
        # What start-up built lives as long as the process: exempt from the garbage
        # collector, whose full passes over it would otherwise stall requests ~20 ms.
        gc.freeze()

    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            create_pixel_router(settings.pixel),
            create_tracking_router(settings.tracking),
            pixel_script,
            graphql_controller,
        ],
        on_startup=[load_enrichment_data],
        lifespan=[store_lifespan],
        before_send=[add_pixel_headers],
        exception_handlers={
            HTTPException: _http_error,
            HTTP_401_UNAUTHORIZED: _unauthorized,
            HTTP_500_INTERNAL_SERVER_ERROR: _internal_error,
        },
        openapi_config=OpenAPIConfig(title="Conversion API", version="0.1.0"),
        request_max_body_size=settings.max_request_body_bytes,
        middleware=[header_size_limit(settings.max_request_header_bytes)],
        # Unexpected errors are logged once, by _internal_error, with their traceback.
        logging_config=LoggingConfig(
            log_exceptions="never",
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
        ),
        debug=settings.dev,
    )
