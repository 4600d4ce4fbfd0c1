"""`/graphql` over HTTP as OpenAPI describes it: methods, parameters, bodies, statuses.

Strawberry's Litestar controller answers the requests; this subclass keeps its handler
functions and declares what they answer, which the bare controller leaves to Litestar's
guess (one 200 for POST). It also answers OPTIONS with every method (Litestar 2 builds
its own OPTIONS handler from the first handler registered on a path, and would leave
POST out of `Allow`), and refuses with Strawberry's own 400 what Strawberry would
answer 500 to (a JSON body that is a string, `null` or not UTF-8) or run as if it were
absent (an `operationName` that is not a string).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as StrawberryHTTPException
from litestar import MediaType, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from strawberry.http import GraphQLRequestData
from strawberry.litestar.controller import GraphQLController

from models.errors import ErrorBody

API_KEY_SCHEME = "ApiKey"
API_KEY_SECURITY: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]
API_KEY_SECURITY_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API key from `conversions create-api-key`: `Authorization: Bearer <key>`.",
)
ALLOWED_METHODS = "GET, POST, OPTIONS"


class GraphQLError(msgspec.Struct, omit_defaults=True):
    message: str
    locations: list[dict[str, int]] | None = None
    path: list[str | int] | None = None
    extensions: dict[str, Any] | None = None


class GraphQLResponse(msgspec.Struct, omit_defaults=True):
    """What GraphQL answers: `data`, `errors` or both. A refusal before any GraphQL runs
    (401, 503) has the same shape, with `errors` alone."""

    data: dict[str, Any] | None = None
    errors: list[GraphQLError] | None = None
    extensions: dict[str, Any] | None = None


def _text(description: str) -> ResponseSpec:
    # Strawberry's own refusals are a line of plain text.
    return ResponseSpec(str, description=description, media_type=MediaType.TEXT)


def _graphql(description: str) -> ResponseSpec:
    return ResponseSpec(GraphQLResponse, description=description, media_type=MediaType.JSON)


COMMON_RESPONSES = {
    200: _graphql(
        "The result: data and/or errors; a GraphQL error (bad query, forbidden field, "
        "invalid input, limits) is reported here, with extensions.code"
    ),
    401: _graphql("No API key, or an unknown or revoked one (code UNAUTHENTICATED)"),
    431: ResponseSpec(ErrorBody, description="The request headers are too large"),
    503: _graphql("The store cannot check the API key now: retry after Retry-After seconds"),
}
GET_RESPONSES = {
    **COMMON_RESPONSES,
    400: _text(
        "variables or extensions not a JSON object, an unknown operationName, or a mutation"
    ),
    404: _text("No query given"),
}
POST_RESPONSES = {
    **COMMON_RESPONSES,
    400: _text(
        "A body that is not application/json, not a JSON object (batches are refused), "
        "without a query, or with variables or extensions that are not objects"
    ),
    413: ResponseSpec(ErrorBody, description="A body over MAX_REQUEST_BODY_BYTES"),
}

_OPTIONAL_OBJECT = Schema(one_of=[Schema(type=OpenAPIType.OBJECT), Schema(type=OpenAPIType.NULL)])
_OPTIONAL_STRING = Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)])
GRAPHQL_REQUEST = Schema(
    type=OpenAPIType.OBJECT,
    required=["query"],
    properties={
        "query": Schema(type=OpenAPIType.STRING, description="The GraphQL document"),
        "variables": _OPTIONAL_OBJECT,
        "operationName": _OPTIONAL_STRING,
        "extensions": _OPTIONAL_OBJECT,
    },
)
GET_PARAMETERS: list[Parameter | Reference] = [
    Parameter(
        name="query",
        param_in="query",
        required=True,
        description="The GraphQL document; queries only (mutations need POST)",
        schema=Schema(type=OpenAPIType.STRING, min_length=1),
    ),
    Parameter(
        name="variables",
        param_in="query",
        required=False,
        description="The variables as a JSON object",
        schema=Schema(type=OpenAPIType.STRING, content_media_type=MediaType.JSON),
    ),
    Parameter(
        name="operationName",
        param_in="query",
        required=False,
        description="Which operation of the document to run",
        schema=Schema(type=OpenAPIType.STRING),
    ),
]


@dataclass
class GetOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = GET_PARAMETERS


@dataclass
class PostOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={MediaType.JSON.value: OpenAPIMediaType(schema=GRAPHQL_REQUEST)},
        )


def documented_graphql(controller: type[GraphQLController]) -> type[GraphQLController]:
    """`controller` (from `make_graphql_controller`) with its HTTP face described."""

    class DocumentedGraphQLController(controller):  # type: ignore[valid-type,misc]
        @route(http_method=HttpMethod.OPTIONS, include_in_schema=False)
        async def allowed_methods(self) -> Response[bytes]:
            return Response(content=b"", status_code=204, headers={"Allow": ALLOWED_METHODS})

        handle_http_get = get(
            responses=GET_RESPONSES,
            operation_class=GetOperation,
            security=API_KEY_SECURITY,
            summary="Run a GraphQL query (GET)",
            description="Queries only; see docs/graphql.md.",
            tags=["graphql"],
        )(GraphQLController.handle_http_get.fn)

        handle_http_post = post(
            status_code=200,
            responses=POST_RESPONSES,
            operation_class=PostOperation,
            security=API_KEY_SECURITY,
            summary="Run a GraphQL query or mutation",
            description="One operation per request (batches are refused); see docs/graphql.md.",
            tags=["graphql"],
        )(GraphQLController.handle_http_post.fn)

        def parse_json(self, data: str | bytes) -> Any:
            try:
                parsed = super().parse_json(data)
            except UnicodeDecodeError as error:
                # Strawberry turns only JSON syntax errors into its 400.
                raise StrawberryHTTPException(400, "The request body is not UTF-8") from error
            # Strawberry reads a batch from a list and otherwise assumes an object (a
            # body, or GET's variables); a string or null would be a 500.
            if not isinstance(parsed, dict | list):
                raise StrawberryHTTPException(400, "A JSON object is expected")
            return parsed

        async def parse_http_body(
            self, request: AsyncHTTPRequestAdapter
        ) -> GraphQLRequestData | list[GraphQLRequestData]:
            data = await super().parse_http_body(request)
            # Strawberry checks the other members' types, not this one's.
            if isinstance(data, GraphQLRequestData) and not isinstance(
                data.operation_name, str | None
            ):
                raise StrawberryHTTPException(
                    400, "The GraphQL operation's `operationName` must be a string or null"
                )
            return data

    return DocumentedGraphQLController
