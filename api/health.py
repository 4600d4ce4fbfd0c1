"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from models.store.engine import StoreUnavailableError, check_store, current_engine


@get("/healthz", summary="The process is up", tags=["health"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="The store answers",
    tags=["health"],
    responses={
        503: ResponseSpec(
            dict[str, str], description="The store did not answer a query within 2 seconds"
        )
    },
)
async def readyz() -> Response[dict[str, str]]:
    try:
        await check_store(current_engine())
    except StoreUnavailableError:
        return Response({"status": "store unavailable"}, status_code=503)
    return Response({"status": "ready"})
