"""The ceiling: a bare Litestar app with one route of each hot path's shape and no work.

The same paths and the same query parameters, parsed by the framework: the pixel's
answering 202 with an empty body, the tracking link's 302 to a URL holding a fresh
UUID. What the framework costs before the app does anything.
"""

import uuid

from litestar import Litestar, Response, get


@get("/convert/{click_id:uuid}", sync_to_thread=False)
def convert(
    type: str | None = None,
    test: str | None = None,
    player_id: str | None = None,
    currency: str | None = None,
    amount: str | None = None,
    time: str | None = None,
    transaction_id: str | None = None,
) -> Response[bytes]:
    return Response(content=b"", status_code=202)


@get("/track/{tracking_id:uuid}", sync_to_thread=False)
def track(s1: str | None = None, s2: str | None = None) -> Response[bytes]:
    location = f"https://operator.example/welcome?click_id={uuid.uuid4()}"
    return Response(content=b"", status_code=302, headers={"Location": location})


app = Litestar(route_handlers=[convert, track])
