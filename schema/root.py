"""The one GraphQL schema, built at import time and shared by every app instance:
each feature's queries, mutations and subscriptions, merged into one root type each."""

from __future__ import annotations

from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.clicks import ClickMutation, ClickQuery
from schema.conversion_status import ConversionStatusMutation
from schema.conversions import ConversionMutation, ConversionQuery
from schema.hardening import ConversionSchema, QuietExecutor, RequestPolicy
from schema.keys import KeyMutation
from schema.live import LiveSubscription
from schema.partners import PartnerMutation, PartnerQuery
from schema.postbacks import PostbackMutation, PostbackQuery
from schema.rejections import RejectionQuery
from schema.reports import ReportQuery
from schema.scalars import SCALAR_MAP
from schema.tracking import TrackingMutation, TrackingQuery

schema = ConversionSchema(
    query=merge_types(
        "Query",
        (
            ClickQuery,
            ConversionQuery,
            TrackingQuery,
            PartnerQuery,
            PostbackQuery,
            RejectionQuery,
            ReportQuery,
        ),
    ),
    mutation=merge_types(
        "Mutation",
        (
            ConversionMutation,
            ClickMutation,
            TrackingMutation,
            PartnerMutation,
            KeyMutation,
            PostbackMutation,
            ConversionStatusMutation,
        ),
    ),
    subscription=merge_types("Subscription", (LiveSubscription,)),
    # RequestPolicy validates without suggestions, QuietExecutor checks variables without.
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    extensions=[RequestPolicy],
    execution_context_class=QuietExecutor,
)
