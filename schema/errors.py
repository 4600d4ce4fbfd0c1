"""The GraphQL errors clients are meant to see, each with a machine-readable code.

Anything else raised while resolving is a bug or an outage: production masks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graphql import GraphQLError

from models.conversion_input import FieldError

FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(GraphQLError):
    """An expected error: shown to the client as it is, in every mode."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def bad_user_input(
    message: str, errors: Sequence[FieldError] = (), field_names: Mapping[str, str] | None = None
) -> ClientError:
    """Field names are translated to the GraphQL input's names when a mapping is given."""
    names = field_names or {}
    return ClientError(
        message,
        BAD_USER_INPUT,
        errors=[
            {
                "field": names.get(error.field, error.field) if error.field else None,
                "code": error.code,
                "message": error.message,
            }
            for error in errors
        ],
    )


def store_unavailable() -> ClientError:
    return ClientError("the store cannot take the request now; retry later", STORE_UNAVAILABLE)
