"""Creating clicks. The tracking link and GraphQL's createClick both come through here."""

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from models.clicks.records import SUB_ID_NAMES, ClickRecord, SubIds
from models.errors import FieldError, InvalidInputError, StoreUnavailable, text_errors
from models.partners.access import EVERYTHING, Access
from models.store.engine import StoreUnavailableError
from models.store.tables import MAX_ID_LENGTH, MAX_SUB_ID_LENGTH, MarketingType, Stage
from models.tracking import links
from models.writes import ClickStored, store_click

# Browsers send headers of any size; what a click keeps of them is bounded.
MAX_HEADER_VALUE_LENGTH = 2048
COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")


@dataclass(kw_only=True)
class NewClick(SubIds):
    """A click to store; s1 to s5 are the partner's own sub ids."""

    player_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    created_at: datetime | None = None
    tracking_link_id: uuid.UUID | None = None
    # The marketing type, case-insensitive: one of MarketingType.
    type: str | None = None
    # User-agent families as ua-parser names them; the caller parses, this stores.
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None


def marketing_type_errors(value: str | None) -> list[FieldError]:
    if value and value.lower() not in {member.value for member in MarketingType}:
        allowed = ", ".join(MarketingType)
        return [FieldError("type", "invalid_choice", f"{{type}} must be one of {allowed}")]
    return []


def sub_id_errors(sub_ids: SubIds) -> list[FieldError]:
    """Sub ids are opaque to us but bounded: at most 255 characters, clean text."""
    errors: list[FieldError] = []
    for name in SUB_ID_NAMES:
        errors += text_errors(name, getattr(sub_ids, name), max_length=MAX_SUB_ID_LENGTH)
    return errors


def click_errors(new_click: NewClick) -> list[FieldError]:
    """Every bad field of a click at once; empty strings count as absent."""
    errors = text_errors("player_id", new_click.player_id, max_length=MAX_ID_LENGTH)
    if new_click.ip:
        try:
            address = ipaddress.ip_address(new_click.ip)
        except ValueError:
            address = None
        # A zone id (fe80::1%eth0) names an interface of the sender's host: meaningless
        # here, and of any length.
        if address is None or getattr(address, "scope_id", None) is not None:
            message = "{ip} must be an IPv4 or IPv6 address, without a zone id"
            errors.append(FieldError("ip", "invalid_ip", message))
    errors += text_errors("user_agent", new_click.user_agent, max_length=MAX_HEADER_VALUE_LENGTH)
    errors += text_errors("referrer", new_click.referrer, max_length=MAX_HEADER_VALUE_LENGTH)
    if new_click.country and not COUNTRY_CODE.fullmatch(new_click.country):
        message = "{country} must be an ISO 3166-1 alpha-2 code, as DE"
        errors.append(FieldError("country", "invalid_country", message))
    if new_click.created_at is not None and new_click.created_at.utcoffset() is None:
        message = "{created_at} must carry a UTC offset"
        errors.append(FieldError("created_at", "missing_offset", message))
    errors += marketing_type_errors(new_click.type)
    errors += sub_id_errors(new_click)
    return errors


def click_record(new_click: NewClick, click_id: uuid.UUID) -> ClickRecord:
    """The click a valid `new_click` stores (see `click_errors`)."""
    return ClickRecord(
        id=click_id,
        created_at=new_click.created_at or datetime.now(UTC),
        stage=Stage.NONE,
        player_id=new_click.player_id or None,
        ip=new_click.ip or None,
        user_agent=new_click.user_agent or None,
        referrer=new_click.referrer or None,
        country=new_click.country.upper() if new_click.country else None,
        tracking_link_id=new_click.tracking_link_id,
        type=MarketingType(new_click.type.lower()) if new_click.type else None,
        sub_ids=SubIds(**{name: getattr(new_click, name) or None for name in SUB_ID_NAMES}),
        browser_family=new_click.browser_family,
        os_family=new_click.os_family,
        device_family=new_click.device_family,
    )


async def _tracking_link_errors(
    access: Access, tracking_link_id: uuid.UUID | None
) -> list[FieldError]:
    """A click's tracking link must be one `access` sees. A partner's clicks are the
    clicks of its links, so a partner's key must name one: a click without a link
    would belong to nobody it could ever read again."""
    if tracking_link_id is None:
        if access.is_everything:
            return []
        message = "{tracking_link_id} is required with a partner's key: one of its own links"
        return [FieldError("tracking_link_id", "required", message)]
    if await links.READS.by_ids(access, [tracking_link_id]):
        return []
    return [
        FieldError("tracking_link_id", "not_found", "no tracking link has this {tracking_link_id}")
    ]


async def create_click(
    new_click: NewClick, *, click_id: uuid.UUID | None = None, access: Access = EVERYTHING
) -> uuid.UUID:
    """Store a click, with `click_id` if given (else a new one), in this worker's next
    group commit; raise InvalidInputError naming every bad field, StoreUnavailableError
    when the store cannot take it now. `access` is the caller's: an API key's, or the
    operator's own for the code that runs inside the service."""
    errors = click_errors(new_click) + await _tracking_link_errors(
        access, new_click.tracking_link_id
    )
    if errors:
        raise InvalidInputError(errors)
    match await store_click(click_record(new_click, click_id or uuid.uuid4())):
        case ClickStored(click_id=stored):
            return stored
        case StoreUnavailable(reason=reason):
            raise StoreUnavailableError(f"the click was not stored: {reason}")
