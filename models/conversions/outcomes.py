"""What recording a conversion can come to: values each face maps to its own answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from models.conversions.records import ConversionRecord
from models.errors import FieldError, StoreUnavailable


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


@dataclass(frozen=True)
class ClickNotFound:
    click_id: uuid.UUID


@dataclass(frozen=True)
class Invalid:
    errors: list[FieldError]


@dataclass(frozen=True)
class SignatureRefused:
    """A pixel fire whose offer needs a signature it lacks, or with a wrong one."""

    error: FieldError


Outcome = (
    Recorded | Duplicate | Conflict | ClickNotFound | Invalid | SignatureRefused | StoreUnavailable
)
