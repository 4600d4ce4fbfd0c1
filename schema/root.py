"""The one GraphQL schema, built at import time and shared by every app instance."""

from __future__ import annotations

from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.hardening import ConversionSchema, RequestPolicy
from schema.mutation import Mutation
from schema.query import Query
from schema.tracking import TrackingMutation, TrackingQuery

schema = ConversionSchema(
    # Offers and tracking links keep to their own module; clients see one root type each.
    query=merge_types("Query", (Query, TrackingQuery)),
    mutation=merge_types("Mutation", (Mutation, TrackingMutation)),
    # Suggestions would let a client map a schema that has introspection turned off.
    config=StrawberryConfig(disable_field_suggestions=True),
    extensions=[RequestPolicy],
)
