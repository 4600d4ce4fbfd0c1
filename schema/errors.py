"""The GraphQL errors clients are meant to see: every one carries `extensions.code`.

Anything else raised while resolving is a bug or an outage: production masks it
(schema/hardening.py). Field names in errors are spelled as the client spells them:
the service's `player_id` is GraphQL's `playerId`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError
from litestar.exceptions import HTTPException
from strawberry.utils.str_converters import to_camel_case

from models.errors import FieldError, FieldNaming

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
EXECUTION_TIMEOUT = "EXECUTION_TIMEOUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(GraphQLError):
    """An expected error: shown to the client as it is, in every mode."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


class GraphQLHTTPError(HTTPException):
    """A refusal before any GraphQL runs (no key, no store), still answered in GraphQL's
    shape: `{"errors": [{"message": ..., "extensions": {"code": ...}}]}`."""

    def __init__(
        self, detail: str, *, status_code: int, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.code = code


def graphql_error_body(message: str, code: str) -> bytes:
    return msgspec.json.encode({"errors": [{"message": message, "extensions": {"code": code}}]})


def graphql_naming(renames: Mapping[str, str] | None = None) -> FieldNaming:
    """How GraphQL spells the service's field names: camelCase, as Strawberry names input
    fields, except where an input names a field otherwise (`time` is `occurredAt`)."""
    names = renames or {}

    def name(field: str) -> str:
        return names.get(field) or to_camel_case(field)

    return name


def bad_user_input(
    message: str, errors: Sequence[FieldError] = (), renames: Mapping[str, str] | None = None
) -> ClientError:
    naming = graphql_naming(renames)
    shown = [error.named(naming) for error in errors]
    return ClientError(
        message,
        BAD_USER_INPUT,
        errors=[{"field": e.field, "code": e.code, "message": e.message} for e in shown],
    )


def store_unavailable() -> ClientError:
    return ClientError("the store cannot take the request now; retry later", STORE_UNAVAILABLE)


@strawberry.type(name="FieldError")
class FieldErrorType:
    field: str | None = strawberry.field(description="The input field, null for the whole input.")
    code: str
    message: str

    @classmethod
    def from_errors(
        cls, errors: Sequence[FieldError], renames: Mapping[str, str] | None = None
    ) -> list[FieldErrorType]:
        naming = graphql_naming(renames)
        shown = [error.named(naming) for error in errors]
        return [cls(field=e.field, code=e.code, message=e.message) for e in shown]
