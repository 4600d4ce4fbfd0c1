"""The one GraphQL schema, built at import time and shared by every app instance."""

from __future__ import annotations

from strawberry.schema.config import StrawberryConfig

from schema.hardening import ConversionSchema, RequestPolicy
from schema.mutation import Mutation
from schema.query import Query

schema = ConversionSchema(
    query=Query,
    mutation=Mutation,
    # Suggestions would let a client map a schema that has introspection turned off.
    config=StrawberryConfig(disable_field_suggestions=True),
    extensions=[RequestPolicy],
)
