"""Offers: what partners promote, the operator's landing page."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote, urlsplit

import idna

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor
from models.store.reads import TableReads
from models.store.tables import MAX_NAME_LENGTH, Offer

MAX_LANDING_URL_LENGTH = 2048
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


async def create_offer(name: str, landing_url: str) -> OfferRecord:
    """Store an offer; raise InvalidInputError naming every bad field."""
    errors = text_errors("name", name.strip(), max_length=MAX_NAME_LENGTH, required=True)
    errors += landing_url_errors(landing_url)
    if errors:
        raise InvalidInputError(errors)
    offer = Offer(
        name=name.strip(), landing_url=ascii_landing_url(landing_url), created_at=datetime.now(UTC)
    )
    await offer.save()
    return READS.mapping.record(offer.to_dict())
