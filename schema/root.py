"""The one GraphQL schema, built at import time and shared by every app instance:
each feature's queries and mutations, merged into one root type each."""

from __future__ import annotations

from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.clicks import ClickMutation, ClickQuery
from schema.conversions import ConversionMutation, ConversionQuery
from schema.hardening import ConversionSchema, RequestPolicy
from schema.scalars import SCALAR_MAP
from schema.tracking import TrackingMutation, TrackingQuery

schema = ConversionSchema(
    query=merge_types("Query", (ClickQuery, ConversionQuery, TrackingQuery)),
    mutation=merge_types("Mutation", (ConversionMutation, ClickMutation, TrackingMutation)),
    # Suggestions would let a client map a schema that has introspection turned off.
    config=StrawberryConfig(disable_field_suggestions=True, scalar_map=SCALAR_MAP),
    extensions=[RequestPolicy],
)
