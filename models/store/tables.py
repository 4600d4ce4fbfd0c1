"""Piccolo tables: every column declared once. The schema changes only by migrations."""

from __future__ import annotations

import enum

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.uuid import UUID4
from piccolo.table import Table

MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 200
MAX_SUB_ID_LENGTH = 255
# ua-parser families are short names ("Chrome Mobile", "Mac OS X"); longer ones are cut.
MAX_FAMILY_LENGTH = 100
MAX_SECRET_LENGTH = 64


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
    # `conversions import FILE.csv` (models/conversions/imports.py).
    IMPORT = "import"


class ConversionStatus(enum.StrEnum):
    """Where a conversion stands with the operator: held, paid, refused or charged back."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    REVERSED = "reversed"


class FirePolicy(enum.StrEnum):
    """Which of an offer's pixel fires must be signed with its fire secret."""

    OPEN = "open"
    SIGNED_DEPOSITS = "signed_deposits"
    SIGNED = "signed"


class MarketingType(enum.StrEnum):
    """The kind of traffic a tracking link's visitor came from, as the partner tags it."""

    SEO = "seo"
    PPC = "ppc"
    SOCIAL = "social"
    EMAIL = "email"
    DISPLAY = "display"
    PUSH = "push"
    NATIVE = "native"
    INFLUENCER = "influencer"
    OTHER = "other"


class Offer(Table):
    """What a partner promotes: the operator's landing page."""

    id = UUID(primary_key=True, default=UUID4())
    name = Varchar(length=MAX_NAME_LENGTH)
    # May hold a `{click_id}` placeholder; validated as an absolute http(s) URL.
    landing_url = Text()
    created_at = Timestamptz()
    fire_policy = Varchar(length=16, default=FirePolicy.OPEN.value, choices=FirePolicy)
    # Its deposits arrive PENDING, to be approved or rejected once verified (issue 14).
    hold_deposits = Boolean(default=False)


class OfferFireSecret(Table):
    """An offer's fire secret, apart from the offer so no read of offers can carry it.

    Kept as is, not hashed: verifying an HMAC needs the key itself. The secret it
    replaced stays valid until `previous_expires_at`.
    """

    id = UUID(primary_key=True, default=UUID4())
    offer = ForeignKey(references=Offer, null=False, unique=True, on_delete=OnDelete.cascade)
    secret = Varchar(length=MAX_SECRET_LENGTH, secret=True)
    previous_secret = Varchar(length=MAX_SECRET_LENGTH, null=True, default=None, secret=True)
    previous_expires_at = Timestamptz(null=True, default=None)
    rotated_at = Timestamptz()


class Partner(Table):
    """An affiliate that publishes tracking links; its API keys see only its own data."""

    id = UUID(primary_key=True, default=UUID4())
    # As long as the partner references it replaced, so that every one became a name.
    name = Varchar(length=MAX_ID_LENGTH)
    created_at = Timestamptz()


class TrackingLink(Table):
    """A partner's link to an offer; every visit through it becomes a click."""

    id = UUID(primary_key=True, default=UUID4())
    offer = ForeignKey(references=Offer, null=False, on_delete=OnDelete.restrict)
    # NOT NULL in the database: the partners migration adds it as PostgreSQL's constraint
    # and as SQLite's triggers (SQLite cannot alter a column). Piccolo's record of it stays
    # nullable, as the column was added, so auto migrations see no change to make.
    partner = ForeignKey(references=Partner, null=True, default=None, on_delete=OnDelete.restrict)
    creative = Varchar(length=MAX_ID_LENGTH, null=True, default=None)
    created_at = Timestamptz()


class Click(Table):
    id = UUID(primary_key=True, default=UUID4())
    created_at = Timestamptz()
    stage = SmallInt(default=Stage.NONE.value, choices=Stage)
    player_id = Varchar(length=MAX_ID_LENGTH, null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Text(null=True, default=None)
    referrer = Text(null=True, default=None)
    country = Varchar(length=2, null=True, default=None)
    # None for clicks created through GraphQL rather than a tracking link.
    tracking_link = ForeignKey(
        references=TrackingLink, null=True, default=None, on_delete=OnDelete.restrict
    )
    type = Varchar(length=16, null=True, default=None, choices=MarketingType)
    s1 = Varchar(length=MAX_SUB_ID_LENGTH, null=True, default=None)
    s2 = Varchar(length=MAX_SUB_ID_LENGTH, null=True, default=None)
    s3 = Varchar(length=MAX_SUB_ID_LENGTH, null=True, default=None)
    s4 = Varchar(length=MAX_SUB_ID_LENGTH, null=True, default=None)
    s5 = Varchar(length=MAX_SUB_ID_LENGTH, null=True, default=None)
    browser_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)
    os_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)
    device_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)


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
    browser_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)
    os_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)
    device_family = Varchar(length=MAX_FAMILY_LENGTH, null=True, default=None)
    # A valid signature came with it, or an API key recorded it.
    verified = Boolean(default=False)
    # Changed only by setConversionStatus, which writes a ConversionStatusChange for each.
    status = Varchar(length=16, default=ConversionStatus.APPROVED.value, choices=ConversionStatus)


class ConversionStatusChange(Table):
    """One change of a conversion's status, written in the transaction that makes it."""

    id = UUID(primary_key=True, default=UUID4())
    conversion = ForeignKey(references=Conversion, null=False, on_delete=OnDelete.cascade)
    from_status = Varchar(length=16, choices=ConversionStatus)
    to_status = Varchar(length=16, choices=ConversionStatus)
    reason = Text(null=True, default=None)
    changed_at = Timestamptz()
    # The name of the API key that made the change.
    changed_by = Varchar(length=100)


class PostbackEvent(enum.StrEnum):
    """What a postback tells a partner about: a conversion's type, its first deposit,
    or (issue 14) a change of its status."""

    INSTALL = "install"
    REGISTRATION = "registration"
    DEPOSIT = "deposit"
    FIRST_DEPOSIT = "first_deposit"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVERSED = "reversed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class PostbackRule(Table):
    """A partner's postback: which events of its conversions (of one offer, or all) are
    sent to which URL template."""

    id = UUID(primary_key=True, default=UUID4())
    partner = ForeignKey(references=Partner, null=False, on_delete=OnDelete.restrict)
    # None: every offer of the partner.
    offer = ForeignKey(references=Offer, null=True, default=None, on_delete=OnDelete.cascade)
    # The events as one text, ",install,first_deposit,": the batch's SQL matches them with
    # LIKE, spelled the same on both engines (SQLite has no arrays).
    events = Varchar(length=200)
    url_template = Text()
    enabled = Boolean(default=True)
    disabled_reason = Text(null=True, default=None)
    created_at = Timestamptz()


class PostbackDelivery(Table):
    """The outbox: one row per rule, conversion and event, written in the transaction
    that stores the conversion; the dispatcher sends it (models/postbacks/dispatcher.py)."""

    id = UUID(primary_key=True, default=UUID4())
    # A deleted rule takes its deliveries with it: nothing is ever sent for it again.
    rule = ForeignKey(references=PostbackRule, null=False, on_delete=OnDelete.cascade)
    conversion = ForeignKey(references=Conversion, null=False, on_delete=OnDelete.cascade)
    event = Varchar(length=16, choices=PostbackEvent)
    # The URL of the last attempt: rendered from the rule's template when it is sent.
    url = Text(null=True, default=None)
    status = Varchar(length=16, default=DeliveryStatus.PENDING.value, choices=DeliveryStatus)
    attempts = Integer(default=0)
    last_status_code = Integer(null=True, default=None)
    last_error = Text(null=True, default=None)
    next_attempt_at = Timestamptz()
    delivered_at = Timestamptz(null=True, default=None)
    # When it became DELIVERED or FAILED: the order of a rule's last deliveries.
    finished_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    # A dispatcher's claim: until then no other dispatcher takes it; a crashed worker's
    # claim runs out and the delivery is tried again.
    claimed_until = Timestamptz(null=True, default=None)
    claim = UUID(null=True, default=None)


class ApiKey(Table):
    """A GraphQL client's credential. Only the SHA-256 of the key is stored."""

    id = UUID(primary_key=True, default=UUID4())
    name = Varchar(length=100)
    scope = Varchar(length=16)
    key_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    # A partner's key sees only that partner's data (models/access.py); None sees everything.
    partner = ForeignKey(references=Partner, null=True, default=None, on_delete=OnDelete.restrict)


class FireRejection(Table):
    """A pixel fire answered 401, 404, 409 or 422, kept for an integrator to see why
    (models/rejections/): never its `sig`. Pruned after FIRE_REJECTION_RETENTION_DAYS."""

    id = UUID(primary_key=True, default=UUID4())
    at = Timestamptz()
    # The HTTP status the fire was answered.
    status = SmallInt()
    # The answer's errors as JSON: [{"field": ..., "code": ..., "message": ...}].
    errors = Text()
    # Not a foreign key: a 404's click is one that does not exist. None when unreadable.
    click_id = UUID(null=True, default=None)
    # From the click's tracking link, when the click exists and has one.
    offer = ForeignKey(references=Offer, null=True, default=None, on_delete=OnDelete.cascade)
    partner = ForeignKey(references=Partner, null=True, default=None, on_delete=OnDelete.cascade)
    # The fire's parameters as received, every `sig` taken out, cut to 1 KiB.
    query = Text(null=True, default=None)
    ip = Varchar(length=45, null=True, default=None)
    user_agent = Text(null=True, default=None)
    referrer = Text(null=True, default=None)


TABLES: tuple[type[Table], ...] = (
    Offer,
    OfferFireSecret,
    Partner,
    TrackingLink,
    Click,
    Conversion,
    ApiKey,
    PostbackRule,
    PostbackDelivery,
    ConversionStatusChange,
    FireRejection,
)
