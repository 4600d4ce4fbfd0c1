"""`GET /pixel.js`: the browser script that fires the pixel (sendBeacon, fetch, image)."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from typing import Any

from litestar import Request, Response, get, head
from litestar.openapi.datastructures import ResponseSpec

PIXEL_SCRIPT = files("pixel").joinpath("static/pixel.js").read_bytes()
PIXEL_SCRIPT_ETAG = f'"{hashlib.sha256(PIXEL_SCRIPT).hexdigest()[:32]}"'
PIXEL_SCRIPT_HEADERS = {
    # Operators embed the unversioned URL: an hour of caching keeps page loads cheap
    # and still lets a new release reach every page the same day.
    "Cache-Control": "public, max-age=3600",
    "ETag": PIXEL_SCRIPT_ETAG,
    # Pages load it from their own origin; `crossorigin` script tags need CORS.
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
}


SCRIPT_MEDIA_TYPE = "text/javascript"
SCRIPT_RESPONSES = {
    200: ResponseSpec(bytes, description="The script", media_type=SCRIPT_MEDIA_TYPE),
    304: ResponseSpec(None, description="Unchanged since the ETag in If-None-Match"),
}


def _is_current(request: Request) -> bool:
    return PIXEL_SCRIPT_ETAG in request.headers.get("if-none-match", "")


@get(
    "/pixel.js",
    summary="The pixel script for browsers",
    description="Fires a conversion with navigator.sendBeacon, falling back to fetch "
    "with keepalive and then an image. See docs/tracking-and-browsers.md.",
    tags=["pixel"],
    media_type=SCRIPT_MEDIA_TYPE,
    responses=SCRIPT_RESPONSES,
)
async def pixel_script(request: Request) -> Response[bytes]:
    if _is_current(request):
        return Response(content=b"", status_code=304, headers=PIXEL_SCRIPT_HEADERS)
    return Response(
        content=PIXEL_SCRIPT,
        media_type=SCRIPT_MEDIA_TYPE,
        headers=PIXEL_SCRIPT_HEADERS,
    )


@head(
    "/pixel.js",
    summary="The pixel script's headers, without the script",
    tags=["pixel"],
    media_type=SCRIPT_MEDIA_TYPE,
    responses=SCRIPT_RESPONSES,
)
async def pixel_script_headers(request: Request) -> Response[None]:
    # Litestar insists a HEAD handler's body be typed None; b"" is how none is sent.
    empty: Any = b""
    return Response(
        content=empty,
        status_code=304 if _is_current(request) else 200,
        media_type=SCRIPT_MEDIA_TYPE,
        headers=PIXEL_SCRIPT_HEADERS,
    )
