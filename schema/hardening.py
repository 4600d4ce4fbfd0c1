"""Request limits and error hygiene, applied per request from the request's context.

The schema is built once, at import; whether a request runs in development or
production mode, and under which limits, comes with its context. So one schema
serves apps built with different settings (the tests build both).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cache

from graphql import GraphQLError, ValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema import Schema
from strawberry.types import ExecutionContext

from models.store.engine import is_store_unavailable
from schema.context import GraphQLContext
from schema.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    store_unavailable,
)

logger = logging.getLogger(__name__)
MASKED_MESSAGE = "Unexpected error."


@cache
def _depth_rule(max_depth: int) -> type[ValidationRule]:
    return depth_validator(max_depth, should_ignore=None)


@cache
def _aliases_rule(max_aliases: int) -> type[ValidationRule]:
    return aliases_validator(max_aliases)


def is_unexpected(error: GraphQLError) -> bool:
    """Errors raised by resolvers that are not GraphQL errors: bugs and outages."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class RequestPolicy(SchemaExtension):
    """Depth, alias and token limits always; introspection and raw errors only in dev."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if not isinstance(context, GraphQLContext):
            raise TypeError("the GraphQL schema runs only behind the app's context getter")
        limits = context.limits
        rules = [_depth_rule(limits.max_depth), _aliases_rule(limits.max_aliases)]
        if not context.dev:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.execution_context.validation_rules = (
            *self.execution_context.validation_rules,
            *rules,
        )
        self.execution_context.parse_options["max_tokens"] = limits.max_tokens
        if context.response is not None:
            context.response.headers["X-Request-ID"] = context.request_id
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._public(error, context) for error in result.errors]

    @staticmethod
    def _public(error: GraphQLError, context: GraphQLContext) -> GraphQLError:
        if not is_unexpected(error):
            if error.extensions and "code" in error.extensions:
                return error
            # graphql-core's own errors carry no code: a document that does not parse,
            # does not validate, or whose variables do not fit their types.
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                path=error.path,
                extensions={**(error.extensions or {}), "code": _code_of(error)},
            )
        replacement: GraphQLError
        if error.original_error is not None and is_store_unavailable(error.original_error):
            replacement = store_unavailable()
        elif context.dev:
            return error
        else:
            replacement = GraphQLError(
                MASKED_MESSAGE,
                extensions={"code": INTERNAL_SERVER_ERROR, "requestId": context.request_id},
            )
        return GraphQLError(
            replacement.message,
            nodes=error.nodes,
            path=error.path,
            extensions=replacement.extensions,
        )


def _code_of(error: GraphQLError) -> str:
    if error.message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    if error.original_error is not None or error.message.startswith("Variable "):
        return BAD_USER_INPUT
    return GRAPHQL_VALIDATION_FAILED


class ConversionSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log bugs and outages with the request id; client mistakes are not worth a log line."""
        context = execution_context.context if execution_context else None
        request_id = context.request_id if isinstance(context, GraphQLContext) else None
        for error in errors:
            if is_unexpected(error):
                logger.error(
                    "unexpected GraphQL error in request %s at %s",
                    request_id,
                    error.path,
                    exc_info=error.original_error,
                )
