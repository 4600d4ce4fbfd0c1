"""The public faces' query parameters: declared once, read from the raw bytes.

Each face declares its parameters as a tuple of `QueryParameter`s (the pixel's below,
the tracking link's in pixel/track.py). The same tuple gives the names the reader
accepts and the OpenAPI description of each parameter (pixel/openapi.py), so the two
cannot drift.

Frameworks forgive what the faces must refuse: they keep the last of repeated
parameters and replace invalid UTF-8 silently. This reader works on the raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from models.conversions.input import AMOUNT_PATTERN
from models.conversions.signatures import SIGNATURE_PARAMETER
from models.errors import FieldError
from models.store.tables import MAX_ID_LENGTH, ConversionType, Currency

MAX_QUERY_BYTES = 4096


@dataclass(frozen=True)
class QueryParameter:
    """One parameter a face reads: its name, what OpenAPI says of its value (type,
    enum, format, pattern, length), and whether a GET must carry it. What OpenAPI cannot
    say (any case, cross-field rules) goes in the description."""

    name: str
    description: str
    schema: Schema
    required: bool = False


def accepted_names(parameters: Iterable[QueryParameter]) -> frozenset[str]:
    return frozenset(parameter.name for parameter in parameters)


def choice(values: Iterable[str]) -> Schema:
    return Schema(type=OpenAPIType.STRING, enum=[str(value) for value in values])


def text(max_length: int) -> Schema:
    return Schema(type=OpenAPIType.STRING, max_length=max_length)


PIXEL_QUERY = (
    QueryParameter(
        "type",
        "The funnel step, in any case.",
        choice(ConversionType),
        required=True,
    ),
    QueryParameter(
        "test",
        "true, false, 1 or 0, in any case. true: validate and process fully, answer as "
        "usual, store and change nothing.",
        choice(["true", "false", "1", "0"]),
    ),
    QueryParameter(
        "player_id",
        "The operator's player id; no control characters.",
        text(MAX_ID_LENGTH),
    ),
    QueryParameter(
        "currency",
        "Deposits only, together with amount; in any case.",
        choice(Currency),
    ),
    QueryParameter(
        "amount",
        "Deposits only, together with currency: ASCII digits with at most 2 decimals, "
        "greater than 0 and at most 1000000000; never rounded.",
        Schema(type=OpenAPIType.STRING, pattern=f"^{AMOUNT_PATTERN.pattern}$"),
    ),
    QueryParameter(
        "time",
        "When it happened, ISO 8601 with Z or an offset; default: when received. Refused "
        "more than 5 minutes in the future or more than 5 minutes before the click.",
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
    ),
    QueryParameter(
        "transaction_id",
        "The operator's id for the event, no control characters; makes deposit retries "
        "safe; required on a signed deposit under a signing policy.",
        text(MAX_ID_LENGTH),
    ),
    QueryParameter(
        SIGNATURE_PARAMETER,
        "The fire's signature, when the click's offer asks for signed fires "
        "(see the README's Signed fires).",
        Schema(type=OpenAPIType.STRING),
    ),
)
# The parameters that matter; anything else (cache busters, method=postback, ...) is ignored.
PIXEL_PARAMETERS = accepted_names(PIXEL_QUERY)


def read_parameters(
    *encoded_parts: bytes, names: frozenset[str] = PIXEL_PARAMETERS
) -> tuple[dict[str, str], list[FieldError]]:
    """Decode `application/x-www-form-urlencoded` parts (a query string, a form body).

    Only the parameters in `names` matter; each may appear once across all parts, and
    one given twice or carrying invalid UTF-8 is reported as a field error naming it.
    """
    values: dict[str, str] = {}
    errors: dict[str, FieldError] = {}
    for encoded in encoded_parts:
        for pair in encoded.split(b"&"):
            raw_name, _, raw_value = pair.partition(b"=")
            name = _decode(raw_name)
            if name not in names:
                continue
            value = _decode(raw_value)
            if name in values or name in errors:
                errors[name] = FieldError(name, "repeated", f"{name} must be given only once")
            elif value is None:
                errors[name] = FieldError(name, "invalid_utf8", f"{name} is not valid UTF-8")
            else:
                values[name] = value
    for name in errors:
        values.pop(name, None)
    return values, list(errors.values())


def _decode(raw: bytes) -> str | None:
    try:
        if b"%" not in raw and b"+" not in raw:
            return raw.decode("utf-8")  # nothing escaped: most names and many values
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None
