"""Piccolo tables. The schema itself is created and changed only by migrations."""

from __future__ import annotations

import enum

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    ForeignKey,
    OnDelete,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.uuid import UUID4
from piccolo.table import Table

MAX_ID_LENGTH = 255


class ConversionType(enum.StrEnum):
    INSTALL = "install"
    REGISTRATION = "registration"
    DEPOSIT = "deposit"


class Currency(enum.StrEnum):
    EUR = "eur"
    USD = "usd"
    GBP = "gbp"


class Stage(enum.IntEnum):
    """How far down the funnel a click has gone; stored as its rank so it only grows."""

    NONE = 0
    INSTALL = 1
    REGISTRATION = 2
    DEPOSIT = 3

    @classmethod
    def reached_by(cls, conversion_type: ConversionType) -> Stage:
        return cls[conversion_type.name]


class Source(enum.StrEnum):
    PIXEL = "pixel"
    GRAPHQL = "graphql"


class Click(Table):
    id = UUID(primary_key=True, default=UUID4())
    created_at = Timestamptz()
    stage = SmallInt(default=Stage.NONE.value, choices=Stage)
    player_id = Varchar(length=MAX_ID_LENGTH, null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Text(null=True, default=None)
    referrer = Text(null=True, default=None)
    country = Varchar(length=2, null=True, default=None)


class Conversion(Table):
    """One reported funnel event.

    Deduplication is enforced by partial unique indexes (see the initial migration):
    one install and one registration per click, one deposit per (click, transaction_id).
    """

    id = UUID(primary_key=True, default=UUID4())
    click = ForeignKey(references=Click, null=False, on_delete=OnDelete.restrict)
    type = Varchar(length=16, choices=ConversionType)
    occurred_at = Timestamptz()
    received_at = Timestamptz()
    player_id = Varchar(length=MAX_ID_LENGTH, null=True, default=None)
    transaction_id = Varchar(length=MAX_ID_LENGTH, null=True, default=None)
    currency = Varchar(length=3, null=True, default=None, choices=Currency)
    # Money is kept exactly, as integer minor units (cents); never a float.
    amount_minor = BigInt(null=True, default=None)
    is_first_deposit = Boolean(default=False)
    source = Varchar(length=16, choices=Source)
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Text(null=True, default=None)
    referrer = Text(null=True, default=None)
    country = Varchar(length=2, null=True, default=None)


class ApiKey(Table):
    """A GraphQL client's credential. Only the SHA-256 of the key is stored."""

    id = UUID(primary_key=True, default=UUID4())
    name = Varchar(length=100)
    scope = Varchar(length=16)
    key_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


TABLES: tuple[type[Table], ...] = (Click, Conversion, ApiKey)
