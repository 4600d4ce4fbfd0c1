"""What recording a conversion can come to: values each face maps to its own answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from models.conversions.records import ConversionRecord
from models.errors import FieldError, StoreUnavailable


@dataclass(frozen=True, slots=True)
class ClickOwner:
    """The offer and partner of a click's tracking link: whose fires a refusal concerns,
    for the log of rejected fires (models/rejections/)."""

    offer_id: uuid.UUID
    partner_id: uuid.UUID | None


@dataclass(frozen=True)
class Recorded:
    conversion: ConversionRecord
    test: bool = False


@dataclass(frozen=True)
class Duplicate:
    """An exact repeat of a stored conversion: nothing new was stored."""

    conversion: ConversionRecord


@dataclass(frozen=True)
class Conflict:
    """A deposit reused a transaction id with another amount or currency."""

    conversion: ConversionRecord
    message: str
    owner: ClickOwner | None = None


@dataclass(frozen=True)
class ClickNotFound:
    click_id: uuid.UUID


@dataclass(frozen=True)
class Invalid:
    errors: list[FieldError]
    # The click's, when the fire named one that exists.
    owner: ClickOwner | None = None


@dataclass(frozen=True)
class SignatureRefused:
    """A pixel fire whose offer needs a signature it lacks, or with a wrong one."""

    error: FieldError
    owner: ClickOwner | None = None


# The outcomes a pixel answers with an error the log of rejected fires keeps.
Refused = Invalid | ClickNotFound | Conflict | SignatureRefused
Outcome = (
    Recorded | Duplicate | Conflict | ClickNotFound | Invalid | SignatureRefused | StoreUnavailable
)
