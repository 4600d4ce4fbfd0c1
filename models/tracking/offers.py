"""Offers: what partners promote, the operator's landing page."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urlsplit

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor
from models.store.reads import TableReads
from models.store.tables import MAX_NAME_LENGTH, Offer

MAX_LANDING_URL_LENGTH = 2048


@dataclass(kw_only=True)
class OfferRecord:
    CURSOR_KIND: ClassVar[str] = "offer"

    id: uuid.UUID
    name: str
    # May hold a `{click_id}` placeholder; validated as an absolute http(s) URL.
    landing_url: str
    created_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


READS = TableReads(Offer, OfferRecord, Offer.created_at)


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
    return []


async def create_offer(name: str, landing_url: str) -> OfferRecord:
    """Store an offer; raise InvalidInputError naming every bad field."""
    errors = text_errors("name", name.strip(), max_length=MAX_NAME_LENGTH, required=True)
    errors += landing_url_errors(landing_url)
    if errors:
        raise InvalidInputError(errors)
    offer = Offer(name=name.strip(), landing_url=landing_url, created_at=datetime.now(UTC))
    await offer.save()
    return READS.mapping.record(offer.to_dict())
