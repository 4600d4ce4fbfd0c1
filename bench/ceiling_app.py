"""The ceiling: a bare Litestar app with one route of the pixel's shape and no work.

The same path and the same query parameters, parsed by the framework, answering 202
with an empty body: what the framework costs before the app does anything.
"""

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


app = Litestar(route_handlers=[convert])
