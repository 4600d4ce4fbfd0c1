"""The OpenAPI description and Swagger UI, whose assets the app serves itself.

Litestar's pages load their scripts from a CDN, without integrity hashes: whoever
controls the CDN (or the path to it) runs code on the page, and the pages break
without internet access. Swagger UI's files come from the swagger-ui-bundle-v2 package
instead; the CDN-only pages (ReDoc, RapiDoc, Elements) are not served.
"""

from __future__ import annotations

from litestar import Router
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.graphql_http import API_KEY_SCHEME, API_KEY_SECURITY_SCHEME
from api.metrics import METRICS_SCHEME, METRICS_SECURITY_SCHEME

SWAGGER_UI_ASSETS = "/schema/swagger-ui"


def swagger_ui_assets() -> Router:
    return create_static_files_router(
        path=SWAGGER_UI_ASSETS, directories=[swagger_ui_path], name="swagger-ui"
    )


def openapi_config(title: str, version: str) -> OpenAPIConfig:
    """`/schema/openapi.json` and `.yaml`; Swagger UI at `/schema` and `/schema/swagger`."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{SWAGGER_UI_ASSETS}/favicon-32x32.png">',
    )
    # The first plugin also answers at /schema itself.
    return OpenAPIConfig(
        title=title,
        version=version,
        render_plugins=[swagger, JsonRenderPlugin(), YamlRenderPlugin()],
        components=Components(
            security_schemes={
                API_KEY_SCHEME: API_KEY_SECURITY_SCHEME,
                METRICS_SCHEME: METRICS_SECURITY_SCHEME,
            }
        ),
    )
