"""The pixel's own query-string reader.

Frameworks forgive what the pixel must refuse: they keep the last of repeated
parameters and replace invalid UTF-8 silently. This reader works on the raw bytes.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from models.conversions.signatures import SIGNATURE_PARAMETER
from models.errors import FieldError

MAX_QUERY_BYTES = 4096
# The parameters that matter; anything else (cache busters, method=postback, ...) is ignored.
# A signed fire's HMAC, SIGNATURE_PARAMETER (models/conversions/signatures.py), is read
# like the others, so that it too may be given only once.
PIXEL_PARAMETERS = frozenset(
    {"type", "test", "player_id", "currency", "amount", "time", "transaction_id"}
    | {SIGNATURE_PARAMETER}
)


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
