"""Offers, tracking links and the visits that turn into clicks.

A visit through `GET /track/{tracking_id}` creates a click and sends the player on to
the offer's landing URL with the new click id in it. The redirect target is only
ever the stored landing URL: nothing the visitor sends can change where it goes.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from models.clicks import (
    SUB_ID_NAMES,
    InvalidClickError,
    NewClick,
    click_errors,
    create_click,
)
from models.conversion_input import FieldError
from models.conversion_service import RequestMetadata
from models.database import is_store_unavailable
from models.outcomes import StoreUnavailable
from models.queries import Cursor, Page
from models.queries import _after as after_cursor  # the clicks' keyset rule, shared
from models.queries import _page as page_of
from models.tables import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    Offer,
    TrackingLink,
)

logger = logging.getLogger(__name__)

MAX_LANDING_URL_LENGTH = 2048
CLICK_ID_PLACEHOLDER = "{click_id}"
# The placeholder as it reads after something percent-encoded the landing URL.
ENCODED_CLICK_ID_PLACEHOLDER = re.compile(r"%7Bclick_id%7D", re.IGNORECASE)
VISIT_PARAMETERS = frozenset({"type", *SUB_ID_NAMES})
DEFAULT_CLICK_ID_PARAMETER = "click_id"
# What a configured click-id parameter name may be: it is appended to URLs unencoded.
QUERY_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.~-]{1,64}")


class InvalidTrackingInputError(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))
        self.errors = errors


@dataclass(frozen=True, kw_only=True)
class OfferRecord:
    id: uuid.UUID
    name: str
    landing_url: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OfferRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            landing_url=row["landing_url"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True, kw_only=True)
class TrackingLinkRecord:
    id: uuid.UUID
    offer_id: uuid.UUID
    partner_reference: str
    creative: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrackingLinkRecord:
        return cls(
            id=row["id"],
            offer_id=row["offer"],
            partner_reference=row["partner_reference"],
            creative=row["creative"],
            created_at=row["created_at"],
        )


def _has_control_character(value: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in value)


def _text_errors(name: str, value: str, max_length: int, *, required: bool) -> list[FieldError]:
    if not value.strip():
        return [FieldError(name, "required", f"{name} is required")] if required else []
    if len(value) > max_length:
        return [FieldError(name, "too_long", f"{name} must be at most {max_length} characters")]
    if _has_control_character(value):
        message = f"{name} must not contain control characters"
        return [FieldError(name, "control_character", message)]
    return []


def landing_url_errors(landing_url: str) -> list[FieldError]:
    """An absolute http(s) URL with a host, and nothing a browser would read otherwise."""
    errors = _text_errors("landing_url", landing_url, MAX_LANDING_URL_LENGTH, required=True)
    if errors:
        return errors
    invalid = FieldError(
        "landing_url",
        "invalid_url",
        "landing_url must be an absolute http or https URL such as "
        "https://operator.example/welcome?ref={click_id}",
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


def landing_url_with_click_id(landing_url: str, click_id: uuid.UUID, parameter: str) -> str:
    """The landing URL carrying the click id.

    A `{click_id}` placeholder (also percent-encoded) is replaced wherever it stands;
    otherwise `parameter=<click id>` joins the URL's own query, replacing a value of
    the same name. The other parameters keep their own spelling and percent-encoding.
    """
    with_placeholder = ENCODED_CLICK_ID_PLACEHOLDER.sub(CLICK_ID_PLACEHOLDER, landing_url)
    if CLICK_ID_PLACEHOLDER in with_placeholder:
        return with_placeholder.replace(CLICK_ID_PLACEHOLDER, str(click_id))
    parts = urlsplit(landing_url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote(pair.partition("=")[0].replace("+", " ")) != parameter
    ]
    kept.append(f"{parameter}={click_id}")
    return urlunsplit(parts._replace(query="&".join(kept)))


def _now() -> datetime:
    return datetime.now(UTC)


async def create_offer(name: str, landing_url: str) -> OfferRecord:
    """Store an offer; raise InvalidTrackingInputError naming every bad field."""
    errors = _text_errors("name", name, MAX_NAME_LENGTH, required=True)
    errors += landing_url_errors(landing_url)
    if errors:
        raise InvalidTrackingInputError(errors)
    offer = Offer(name=name.strip(), landing_url=landing_url, created_at=_now())
    await offer.save()
    return OfferRecord.from_row(offer.to_dict())


async def create_tracking_link(
    offer_id: uuid.UUID, partner_reference: str, creative: str | None = None
) -> TrackingLinkRecord:
    """Store a tracking link to an existing offer; raise InvalidTrackingInputError."""
    errors = _text_errors("partner_reference", partner_reference, MAX_ID_LENGTH, required=True)
    errors += _text_errors("creative", creative or "", MAX_ID_LENGTH, required=False)
    if not await Offer.exists().where(Offer.id == offer_id):
        errors.append(FieldError("offer_id", "not_found", "no offer has this offer_id"))
    if errors:
        raise InvalidTrackingInputError(errors)
    link = TrackingLink(
        offer=offer_id,
        partner_reference=partner_reference.strip(),
        creative=creative.strip() if creative and creative.strip() else None,
        created_at=_now(),
    )
    await link.save()
    return TrackingLinkRecord.from_row(link.to_dict())


@dataclass(frozen=True, kw_only=True)
class RawVisit:
    """A tracking-link visit as received: the path segment and the query's strings."""

    tracking_id: str
    type: str | None = None
    sub_ids: dict[str, str] = field(default_factory=dict)
    # Parameters the face could not read (repeated, invalid UTF-8), already as errors.
    unreadable: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Redirect:
    click_id: uuid.UUID
    location: str


@dataclass(frozen=True)
class TrackingLinkNotFound:
    tracking_id: str


@dataclass(frozen=True)
class InvalidVisit:
    errors: list[FieldError]


VisitOutcome = Redirect | TrackingLinkNotFound | InvalidVisit | StoreUnavailable


def _tracking_link_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def follow_tracking_link(
    raw: RawVisit,
    *,
    metadata: RequestMetadata,
    click_id_parameter: str = DEFAULT_CLICK_ID_PARAMETER,
) -> VisitOutcome:
    """Create the visit's click and say where to send the player; store nothing on error."""
    tracking_link_id = _tracking_link_id(raw.tracking_id)
    if tracking_link_id is None:
        return TrackingLinkNotFound(raw.tracking_id)
    try:
        link = await (
            TrackingLink.select(TrackingLink.offer.landing_url.as_alias("landing_url"))
            .where(TrackingLink.id == tracking_link_id)
            .first()
        )
        if link is None:
            return TrackingLinkNotFound(raw.tracking_id)
        new_click = NewClick(
            tracking_link_id=tracking_link_id,
            type=raw.type,
            sub_ids=raw.sub_ids,
            **metadata.columns(),
        )
        if raw.unreadable:
            unreadable = {error.field for error in raw.unreadable}
            others = [error for error in click_errors(new_click) if error.field not in unreadable]
            return InvalidVisit(raw.unreadable + others)
        click_id = await create_click(new_click)
    except InvalidClickError as invalid:
        if any(error.field == "tracking_link_id" for error in invalid.errors):
            # Deleted between the look-up and the insert.
            return TrackingLinkNotFound(raw.tracking_id)
        return InvalidVisit(invalid.errors)
    except Exception as error:
        if is_store_unavailable(error):
            logger.warning("store unavailable while creating a click: %r", error)
            return StoreUnavailable(reason=type(error).__name__)
        raise
    return Redirect(
        click_id, landing_url_with_click_id(link["landing_url"], click_id, click_id_parameter)
    )


# Read side: offers and tracking links in newest-first keyset pages, as clicks are.
OFFER_CURSOR = "offer"
TRACKING_LINK_CURSOR = "tracking_link"


def offer_cursor(offer: OfferRecord) -> Cursor:
    return Cursor(offer.created_at, offer.id)


def tracking_link_cursor(link: TrackingLinkRecord) -> Cursor:
    return Cursor(link.created_at, link.id)


async def offers_page(first: int, after: Cursor | None = None) -> Page[OfferRecord]:
    query = Offer.select()
    if after is not None:
        query = query.where(after_cursor(Offer.created_at, Offer.id, after))
    rows = await query.order_by(Offer.created_at, Offer.id, ascending=False).limit(first + 1)
    return page_of([OfferRecord.from_row(row) for row in rows], first)


async def count_offers() -> int:
    return await Offer.count()


def _tracking_link_conditions(offer_id: uuid.UUID | None) -> list[Any]:
    return [] if offer_id is None else [TrackingLink.offer == offer_id]


async def tracking_links_page(
    offer_id: uuid.UUID | None, first: int, after: Cursor | None = None
) -> Page[TrackingLinkRecord]:
    query = TrackingLink.select()
    for condition in _tracking_link_conditions(offer_id):
        query = query.where(condition)
    if after is not None:
        query = query.where(after_cursor(TrackingLink.created_at, TrackingLink.id, after))
    rows = await query.order_by(TrackingLink.created_at, TrackingLink.id, ascending=False).limit(
        first + 1
    )
    return page_of([TrackingLinkRecord.from_row(row) for row in rows], first)


async def count_tracking_links(offer_id: uuid.UUID | None) -> int:
    query = TrackingLink.count()
    for condition in _tracking_link_conditions(offer_id):
        query = query.where(condition)
    return await query


async def offers_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, OfferRecord]:
    if not ids:
        return {}
    rows = await Offer.select().where(Offer.id.is_in(list(ids)))
    return {record.id: record for record in map(OfferRecord.from_row, rows)}


async def tracking_links_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TrackingLinkRecord]:
    if not ids:
        return {}
    rows = await TrackingLink.select().where(TrackingLink.id.is_in(list(ids)))
    return {record.id: record for record in map(TrackingLinkRecord.from_row, rows)}
