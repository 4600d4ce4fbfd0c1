"""Request limits and error hygiene, applied per request from the request's context.

The schema is built once, at import; whether a request runs in development or
production mode, and under which limits, comes with its context. So one schema
serves apps built with different settings (the tests build both).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from graphql import Executor, GraphQLError, ValidationRule, validate
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from models.store.engine import is_store_unavailable
from schema.context import GraphQLContext
from schema.cost import operation_cost
from schema.errors import (
    BAD_USER_INPUT,
    EXECUTION_TIMEOUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    ClientError,
    store_unavailable,
)

logger = logging.getLogger(__name__)
MASKED_MESSAGE = "Unexpected error."
# The rules Strawberry adds to graphql-core's own when it validates a document.
STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@cache
def _depth_rule(max_depth: int) -> type[ValidationRule]:
    return depth_validator(max_depth, should_ignore=None)


@cache
def _aliases_rule(max_aliases: int) -> type[ValidationRule]:
    return aliases_validator(max_aliases)


def is_unexpected(error: GraphQLError) -> bool:
    """Errors raised by resolvers that are not GraphQL errors: bugs and outages."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def context_of(context: object) -> GraphQLContext:
    if not isinstance(context, GraphQLContext):
        raise TypeError("the GraphQL schema runs only behind the app's context getter")
    return context


class RequestPolicy(SchemaExtension):
    """Depth, alias, token and cost limits and no suggestions always; introspection and
    raw errors only in dev."""

    def on_operation(self) -> Iterator[None]:
        context = context_of(self.execution_context.context)
        self.execution_context.parse_options["max_tokens"] = context.limits.max_tokens
        if context.response is not None:
            context.response.headers["X-Request-ID"] = context.request_id
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self._public(error, context) for error in result.errors]

    def on_validate(self) -> Iterator[None]:
        """Validate here, so that no error suggests names ("Did you mean 'playerId'?"):
        they would map a schema whose introspection is off. Strawberry validates only
        documents that no extension has answered, so this answer stands."""
        execution = self.execution_context
        context = context_of(execution.context)
        document = execution.graphql_document
        assert document is not None  # validation follows a successful parse
        limits = context.limits
        rules = [
            *execution.validation_rules,
            *STRAWBERRY_RULES,
            _depth_rule(limits.max_depth),
            _aliases_rule(limits.max_aliases),
        ]
        if not context.dev:
            rules.append(NoSchemaIntrospectionCustomRule)
        schema = execution.schema._schema
        errors = validate(schema, document, rules, hide_suggestions=True)
        if not errors:
            # Only a valid document has a cost: every field, type and fragment exists.
            cost = operation_cost(
                schema, document, execution.operation_name, execution.variables, limits
            )
            if cost > limits.max_cost:
                errors = [too_costly(cost, limits.max_cost, limits.default_first)]
        execution.pre_execution_errors = errors
        yield

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


def too_costly(cost: int, max_cost: int, default_first: int) -> ClientError:
    return ClientError(
        f"the operation could return {cost} nodes, over the limit of {max_cost}: "
        f"page sizes (first, or {default_first} when absent) multiply along each path "
        "and add up across fields and aliases; ask for smaller or fewer pages",
        GRAPHQL_VALIDATION_FAILED,
        cost=cost,
        maxCost=max_cost,
    )


class QuietExecutor(StrawberryGraphQLCoreExecutionContext):
    """Variables are checked when execution starts: their errors suggest nothing either
    (an unknown enum value or input field of a variable)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})


class ConversionSchema(Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """The operation within the timeout; past it, its resolvers are cancelled (their
        statements with them) and the answer is an error, so that no request holds the
        store's connections, or keeps a client waiting, for longer."""
        context = context_of(context_value)
        seconds = context.limits.timeout_seconds
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await super().execute(
                    query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed_operation_types,
                    operation_extensions,
                )
        except TimeoutError:
            if not deadline.expired():
                raise  # not the deadline's: let it be the error it is
            logger.warning("GraphQL request %s cancelled after %s s", context.request_id, seconds)
            message = f"the operation took longer than {seconds:g} s and was cancelled"
            error = ClientError(message, EXECUTION_TIMEOUT, requestId=context.request_id)
            return ExecutionResult(data=None, errors=[error])

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
