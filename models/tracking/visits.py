"""Visits: a tracking link followed, turned into a click and a redirect.

A visit through `GET /track/{tracking_id}` creates a click and sends the player on to
the offer's landing URL with the new click id in it. The redirect target is only
ever the stored landing URL: nothing the visitor sends can change where it goes.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from models.clicks.records import SubIds
from models.clicks.service import (
    NewClick,
    click_record,
    marketing_type_errors,
    sub_id_errors,
)
from models.errors import FieldError, StoreUnavailable
from models.metadata import RequestMetadata
from models.store.engine import is_store_unavailable
from models.store.tables import TrackingLink
from models.tracking import landing_urls
from models.tracking.offers import ascii_landing_url
from models.writes import ClickStored, store_click

logger = logging.getLogger(__name__)

CLICK_ID_PLACEHOLDER = "{click_id}"
# The placeholder as it reads after something percent-encoded the landing URL.
ENCODED_CLICK_ID_PLACEHOLDER = re.compile(r"%7Bclick_id%7D", re.IGNORECASE)
# What a configured click-id parameter name may be: it is appended to URLs unencoded.
QUERY_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.~-]{1,64}")


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


@dataclass(frozen=True, kw_only=True)
class RawVisit:
    """A tracking-link visit as received: the path segment and the query's strings."""

    tracking_id: str
    type: str | None = None
    sub_ids: SubIds = field(default_factory=SubIds)
    # Parameters the face could not read (repeated, invalid UTF-8), already as errors.
    unreadable: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Redirect:
    click_id: uuid.UUID
    location: str


@dataclass(frozen=True)
class VisitChecked:
    """A visit that would have made a click and a redirect; a check stores nothing."""


@dataclass(frozen=True)
class TrackingLinkNotFound:
    tracking_id: str


@dataclass(frozen=True)
class InvalidVisit:
    errors: list[FieldError]


VisitOutcome = Redirect | VisitChecked | TrackingLinkNotFound | InvalidVisit | StoreUnavailable


def _tracking_link_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def landing_url_of(tracking_link_id: uuid.UUID) -> str | None:
    """The link's offer's landing URL, in ASCII; None for no such link. Cached per worker
    for up to landing_urls.STALENESS_SECONDS."""
    known, landing_url = landing_urls.cached(tracking_link_id)
    if known:
        return landing_url
    row = await (
        TrackingLink.select(TrackingLink.offer.landing_url.as_alias("landing_url"))
        .where(TrackingLink.id == tracking_link_id)
        .first()
    )
    # Offers stored before landing URLs were kept in ASCII are encoded here.
    landing_url = None if row is None else ascii_landing_url(row["landing_url"])
    landing_urls.remember(tracking_link_id, landing_url)
    return landing_url


async def follow_tracking_link(
    raw: RawVisit,
    *,
    metadata: RequestMetadata,
    click_id_parameter: str,
    check_only: bool = False,
) -> VisitOutcome:
    """Create the visit's click and say where to send the player; store nothing on error.

    The click joins the worker's group commit and the redirect is answered only once
    it is committed: a click id handed to a player always names a stored click.
    `check_only` runs every check and stops before the click is made (HEAD: link
    checkers and prefetchers must not make clicks)."""
    tracking_link_id = _tracking_link_id(raw.tracking_id)
    if tracking_link_id is None:
        return TrackingLinkNotFound(raw.tracking_id)
    try:
        landing_url = await landing_url_of(tracking_link_id)
    except Exception as error:
        if is_store_unavailable(error):
            logger.warning("store unavailable while reading a tracking link: %r", error)
            return StoreUnavailable(reason=type(error).__name__)
        raise
    if landing_url is None:
        return TrackingLinkNotFound(raw.tracking_id)
    new_click = NewClick(
        tracking_link_id=tracking_link_id,
        type=raw.type,
        **vars(raw.sub_ids),
        **metadata.columns(),
    )
    # Only what the visitor sent is checked: the metadata is the face's own reading of
    # the request (pixel/enrichment.py), clean by construction, as a test there holds.
    unreadable = {error.field for error in raw.unreadable}
    visit_errors = marketing_type_errors(raw.type) + sub_id_errors(raw.sub_ids)
    errors = raw.unreadable + [error for error in visit_errors if error.field not in unreadable]
    if errors:
        return InvalidVisit(errors)
    # The redirect comes first: a landing URL that cannot make one fails the visit
    # before a click is stored.
    click_id = uuid.uuid4()
    location = landing_url_with_click_id(landing_url, click_id, click_id_parameter)
    if check_only:
        return VisitChecked()
    match await store_click(click_record(new_click, click_id)):
        case ClickStored():
            return Redirect(click_id, location)
        case StoreUnavailable() as unavailable:
            return unavailable
