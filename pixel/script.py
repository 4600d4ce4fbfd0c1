"""`GET /pixel.js`: the browser script that fires the pixel (sendBeacon, fetch, image)."""

from __future__ import annotations

import hashlib
from importlib.resources import files

from litestar import Request, Response, get

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


@get(
    "/pixel.js",
    summary="The pixel script for browsers",
    description="Fires a conversion with navigator.sendBeacon, falling back to fetch "
    "with keepalive and then an image. See docs/tracking-and-browsers.md.",
    tags=["pixel"],
)
async def pixel_script(request: Request) -> Response[bytes]:
    if PIXEL_SCRIPT_ETAG in request.headers.get("if-none-match", ""):
        return Response(content=b"", status_code=304, headers=PIXEL_SCRIPT_HEADERS)
    return Response(
        content=PIXEL_SCRIPT,
        media_type="text/javascript",
        headers=PIXEL_SCRIPT_HEADERS,
    )
