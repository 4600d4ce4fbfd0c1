"""The public faces' query parameters and form bodies in the OpenAPI description.

The faces read their raw query strings themselves (pixel/query.py), so Litestar
cannot infer these parameters from the handlers' signatures; they are rendered here
from the same `QueryParameter` tuples the reader accepts. Path parameters, responses
and everything else come from Litestar's own generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.status_codes import HTTP_400_BAD_REQUEST

from models.errors import ErrorBody
from pixel.query import QueryParameter

# What sendBeacon sends for a string body; read as a URL-encoded form all the same.
TEXT_FORM = "text/plain"
EMPTY = Schema(type=OpenAPIType.STRING, max_length=0)


def error_response(description: str) -> ResponseSpec:
    """An answer with the faces' JSON error body."""
    return ResponseSpec(ErrorBody, description=description, media_type=MediaType.JSON)


def query_parameter(parameter: QueryParameter, *, required: bool) -> Parameter:
    """Empty counts as absent, so an optional parameter may be sent empty."""
    return Parameter(
        name=parameter.name,
        param_in="query",
        required=required,
        description=parameter.description,
        schema=parameter.schema,
        allow_empty_value=not required,
    )


def form_body(parameters: Sequence[QueryParameter], description: str) -> RequestBody:
    """A URL-encoded form of the same parameters; other fields are ignored, and an empty
    one counts as absent (what `allowEmptyValue` says of a query parameter)."""
    form = Schema(
        type=OpenAPIType.OBJECT,
        properties={
            parameter.name: Schema(any_of=[parameter.schema, EMPTY]) for parameter in parameters
        },
    )
    return RequestBody(
        description=description,
        required=False,
        content={
            RequestEncodingType.URL_ENCODED.value: OpenAPIMediaType(schema=form),
            TEXT_FORM: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
        },
    )


def with_query(
    parameters: Sequence[QueryParameter], *, body: RequestBody | None = None
) -> type[Operation]:
    """An `operation_class` that adds `parameters` to the query Litestar describes (as
    required only without a `body`, which may carry them instead) and the `body`.

    It also drops the 400 Litestar lists for any handler with parameters, for its own
    validation: the faces read every parameter themselves and answer 422."""
    described = [
        query_parameter(parameter, required=parameter.required and body is None)
        for parameter in parameters
    ]

    @dataclass
    class OperationWithQuery(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *described]
            if self.responses is not None:
                self.responses.pop(str(HTTP_400_BAD_REQUEST), None)
            if body is not None:
                self.request_body = body

    return OperationWithQuery
