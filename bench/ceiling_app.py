"""The ceiling: a bare Litestar app with one route of the pixel's shape and no work."""

from litestar import Litestar, Response, get


@get("/convert/{click_id:uuid}", sync_to_thread=False)
def convert() -> Response[bytes]:
    return Response(content=b"", status_code=202)


app = Litestar(route_handlers=[convert])
