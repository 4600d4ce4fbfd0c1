"""Offers: what partners promote, the operator's landing page."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import idna
from piccolo.columns import Column

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor
from models.partners.access import EVERYTHING
from models.store.reads import TableReads
from models.store.tables import (
    MAX_NAME_LENGTH,
    MAX_SECRET_LENGTH,
    FirePolicy,
    Offer,
    OfferFireSecret,
)
from models.tracking import landing_urls

MAX_LANDING_URL_LENGTH = 2048
# Operators rotate by deploying the new secret while fires signed with the old one
# still arrive: a day covers a deploy and the retries behind it.
FIRE_SECRET_GRACE = timedelta(hours=24)
# 256 bits, as hex: the length the secret's column holds.
FIRE_SECRET_BYTES = MAX_SECRET_LENGTH // 2
# Printable ASCII stays as written (reserved characters, existing %-escapes, the braces of
# {click_id}); only what is not ASCII gets percent-encoded.
PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


@dataclass(kw_only=True)
class OfferRecord:
    CURSOR_KIND: ClassVar[str] = "offer"

    id: uuid.UUID
    name: str
    # May hold a `{click_id}` placeholder; validated as an absolute http(s) URL and
    # stored in ASCII (ascii_landing_url).
    landing_url: str
    created_at: datetime
    # Which pixel fires must be signed with the offer's fire secret.
    fire_policy: FirePolicy
    # Its deposits arrive PENDING (read by the batch that stores each one).
    hold_deposits: bool

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(Offer, OfferRecord, Offer.created_at)


def ascii_landing_url(landing_url: str) -> str:
    """A valid landing URL as a redirect's `Location` can carry it: ASCII only.

    A non-ASCII host is written in IDNA (`казино.example` -> `xn--80aodfsg.example`);
    any other non-ASCII character is percent-encoded as UTF-8 (`/бонус` ->
    `/%D0%B1%D0%BE%D0%BD%D1%83%D1%81`). An ASCII URL is returned as it is. Raises
    ValueError (idna's errors are ValueErrors) when the host is no valid
    internationalised domain name.
    """
    if landing_url.isascii():
        return landing_url
    # A valid landing URL is scheme://netloc..., and the first "//" begins the netloc.
    netloc_start = landing_url.index("//") + 2
    netloc_end = netloc_start + len(urlsplit(landing_url).netloc)
    userinfo, at, host_port = landing_url[netloc_start:netloc_end].rpartition("@")
    if not host_port.isascii():
        # Not an IPv6 literal, which is ASCII: the port, if any (ASCII digits, as urlsplit
        # checked), follows the only colon.
        host, colon, port = host_port.partition(":")
        host_port = idna.encode(host, uts46=True).decode("ascii") + colon + port
    return "".join(
        [
            landing_url[:netloc_start],
            quote(userinfo, safe=PRINTABLE_ASCII),
            at,
            host_port,
            quote(landing_url[netloc_end:], safe=PRINTABLE_ASCII),
        ]
    )


def landing_url_errors(landing_url: str) -> list[FieldError]:
    """An absolute http(s) URL with a host, and nothing a browser would read otherwise."""
    errors = text_errors(
        "landing_url", landing_url.strip(), max_length=MAX_LANDING_URL_LENGTH, required=True
    )
    if errors:
        return errors
    invalid = FieldError(
        "landing_url",
        "invalid_url",
        "{landing_url} must be an absolute http or https URL such as "
        "https://operator.example/welcome?ref={{click_id}}",
    )
    if any(character.isspace() or character == "\\" for character in landing_url):
        return [invalid]
    try:
        parts = urlsplit(landing_url)
        port = parts.port
    except ValueError:
        return [invalid]
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname or port == 0:
        return [invalid]
    try:
        stored = ascii_landing_url(landing_url)
    except ValueError:
        return [
            FieldError(
                "landing_url",
                "invalid_url",
                "{landing_url} cannot be written in ASCII for a redirect: its host must be "
                "a valid internationalised domain name, such as https://bücher.example/",
            )
        ]
    if len(stored) > MAX_LANDING_URL_LENGTH:
        message = (
            f"{{landing_url}} must be at most {MAX_LANDING_URL_LENGTH} characters once "
            "its non-ASCII characters are encoded"
        )
        return [FieldError("landing_url", "too_long", message)]
    return []


def _name_errors(name: str) -> list[FieldError]:
    return text_errors("name", name.strip(), max_length=MAX_NAME_LENGTH, required=True)


async def create_offer(
    name: str,
    landing_url: str,
    fire_policy: FirePolicy = FirePolicy.OPEN,
    *,
    hold_deposits: bool = False,
) -> OfferRecord:
    """Store an offer; raise InvalidInputError naming every bad field."""
    errors = _name_errors(name) + landing_url_errors(landing_url)
    if errors:
        raise InvalidInputError(errors)
    offer = Offer(
        name=name.strip(),
        landing_url=ascii_landing_url(landing_url),
        created_at=datetime.now(UTC),
        fire_policy=fire_policy.value,
        hold_deposits=hold_deposits,
    )
    await offer.save()
    return READS.mapping.record(offer.to_dict())


@dataclass(frozen=True, kw_only=True)
class OfferChanges:
    """What `update_offer` changes: the fields given, and only those."""

    name: str | None = None
    landing_url: str | None = None
    fire_policy: FirePolicy | None = None
    hold_deposits: bool | None = None


async def update_offer(offer_id: uuid.UUID, changes: OfferChanges) -> OfferRecord | None:
    """Change the given fields of an offer; None if no offer has this id. A fire policy
    and holding deposits take effect with the next batch of fires, on every worker."""
    errors: list[FieldError] = []
    values: dict[Column | str, Any] = {}
    if changes.name is not None:
        errors += _name_errors(changes.name)
        values[Offer.name] = changes.name.strip()
    if changes.landing_url is not None:
        errors += landing_url_errors(changes.landing_url)
        values[Offer.landing_url] = ascii_landing_url(changes.landing_url)
    if changes.fire_policy is not None:
        values[Offer.fire_policy] = changes.fire_policy.value
    if changes.hold_deposits is not None:
        values[Offer.hold_deposits] = changes.hold_deposits
    if errors:
        raise InvalidInputError(errors)
    if not values:
        return (await READS.by_ids(EVERYTHING, [offer_id])).get(offer_id)
    rows = await Offer.update(values).where(Offer.id == offer_id).returning(*Offer.all_columns())
    landing_urls.forget_all()
    return READS.mapping.record(rows[0]) if rows else None


async def rotate_fire_secret(offer_id: uuid.UUID) -> str | None:
    """A new fire secret for the offer, returned this once; None if no offer has this
    id. The secret it replaces stays valid for FIRE_SECRET_GRACE, the one before that
    no longer."""
    if not await Offer.exists().where(Offer.id == offer_id):
        return None
    secret = secrets.token_hex(FIRE_SECRET_BYTES)
    now = datetime.now(UTC)
    # One statement each way, so that concurrent rotations cannot lose a secret.
    rotated = (
        await OfferFireSecret.update(
            {
                OfferFireSecret.previous_secret: OfferFireSecret.secret,
                OfferFireSecret.previous_expires_at: now + FIRE_SECRET_GRACE,
                OfferFireSecret.secret: secret,
                OfferFireSecret.rotated_at: now,
            }
        )
        .where(OfferFireSecret.offer == offer_id)
        .returning(OfferFireSecret.id)
    )
    if rotated:
        return secret
    first = (
        await OfferFireSecret.insert(OfferFireSecret(offer=offer_id, secret=secret, rotated_at=now))
        .on_conflict(target=OfferFireSecret.offer, action="DO NOTHING")
        .returning(OfferFireSecret.id)
    )
    # A concurrent first rotation won the insert: rotate past it.
    return secret if first else await rotate_fire_secret(offer_id)
