"""The pixel's query parameters in the OpenAPI description.

The pixel reads its raw query string itself (see pixel/query.py), so Litestar
cannot infer the parameters from the handler's signature; they are described here.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from models.store.tables import MAX_ID_LENGTH


def _query(name: str, description: str, schema: Schema, *, required: bool = False) -> Parameter:
    return Parameter(
        name=name, param_in="query", required=required, description=description, schema=schema
    )


PIXEL_QUERY_PARAMETERS = (
    _query(
        "type",
        "The funnel step, in any case.",
        Schema(type=OpenAPIType.STRING, enum=["install", "registration", "deposit"]),
        required=True,
    ),
    _query(
        "test",
        "true/false/1/0, in any case. true: validate and process fully, store nothing.",
        Schema(type=OpenAPIType.STRING, enum=["true", "false", "1", "0"]),
    ),
    _query(
        "player_id",
        "The operator's player id; no control characters.",
        Schema(type=OpenAPIType.STRING, max_length=MAX_ID_LENGTH),
    ),
    _query(
        "currency",
        "Deposits only, together with amount; in any case.",
        Schema(type=OpenAPIType.STRING, enum=["eur", "usd", "gbp"]),
    ),
    _query(
        "amount",
        "Deposits only, together with currency: > 0 and <= 1000000000, at most 2 decimals.",
        Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]+(\.[0-9]{1,2})?$"),
    ),
    _query(
        "time",
        "When it happened, ISO 8601 with Z or an offset; default: when received.",
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
    ),
    _query(
        "transaction_id",
        "The operator's id for the event; makes deposit retries safe.",
        Schema(type=OpenAPIType.STRING, max_length=MAX_ID_LENGTH),
    ),
)


@dataclass
class PixelOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), *PIXEL_QUERY_PARAMETERS]
