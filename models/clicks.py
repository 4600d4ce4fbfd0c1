"""Creating clicks. The tracking link and GraphQL's createClick both come through here."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.conversion_input import FieldError, identifier_errors
from models.tables import MAX_SUB_ID_LENGTH, Click, MarketingType, TrackingLink

# Browsers send headers of any size; what a click keeps of them is bounded.
MAX_HEADER_VALUE_LENGTH = 2048
COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")
SUB_ID_NAMES = ("s1", "s2", "s3", "s4", "s5")


class InvalidClickError(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))
        self.errors = errors


@dataclass(frozen=True, kw_only=True)
class NewClick:
    player_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    created_at: datetime | None = None
    tracking_link_id: uuid.UUID | None = None
    # The marketing type, case-insensitive: one of MarketingType.
    type: str | None = None
    # s1 to s5, the partner's own sub ids; other names are errors.
    sub_ids: Mapping[str, str] = field(default_factory=dict)
    # User-agent families as ua-parser names them; the caller parses, this stores.
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None


def marketing_type_errors(value: str | None) -> list[FieldError]:
    if value and value.lower() not in {member.value for member in MarketingType}:
        allowed = ", ".join(MarketingType)
        return [FieldError("type", "invalid_choice", f"type must be one of {allowed}")]
    return []


def sub_id_errors(sub_ids: Mapping[str, str]) -> list[FieldError]:
    """Sub ids are opaque to us but bounded: at most 255 characters, no control characters."""
    errors = [
        FieldError(name, "unknown_sub_id", f"{name} is not a sub id: use s1 to s5")
        for name in sub_ids
        if name not in SUB_ID_NAMES
    ]
    for name, value in sub_ids.items():
        if name in SUB_ID_NAMES and value and len(value) > MAX_SUB_ID_LENGTH:
            message = f"{name} must be at most {MAX_SUB_ID_LENGTH} characters"
            errors.append(FieldError(name, "too_long", message))
        elif name in SUB_ID_NAMES:
            errors += identifier_errors(name, value)
    return errors


def click_errors(new_click: NewClick) -> list[FieldError]:
    """Every bad field of a click at once; empty strings count as absent."""
    errors = identifier_errors("player_id", new_click.player_id)
    if new_click.ip:
        try:
            ipaddress.ip_address(new_click.ip)
        except ValueError:
            errors.append(FieldError("ip", "invalid_ip", "ip must be an IPv4 or IPv6 address"))
    for name, value in (("user_agent", new_click.user_agent), ("referrer", new_click.referrer)):
        if value and len(value) > MAX_HEADER_VALUE_LENGTH:
            errors.append(
                FieldError(
                    name, "too_long", f"{name} must be at most {MAX_HEADER_VALUE_LENGTH} characters"
                )
            )
        elif value and any(unicodedata.category(character) == "Cc" for character in value):
            errors.append(
                FieldError(name, "control_character", f"{name} must not contain control characters")
            )
    if new_click.country and not COUNTRY_CODE.fullmatch(new_click.country):
        errors.append(
            FieldError(
                "country", "invalid_country", "country must be an ISO 3166-1 alpha-2 code, as DE"
            )
        )
    if new_click.created_at is not None and new_click.created_at.utcoffset() is None:
        errors.append(
            FieldError("created_at", "missing_offset", "created_at must carry a UTC offset")
        )
    errors += marketing_type_errors(new_click.type)
    errors += sub_id_errors(new_click.sub_ids)
    return errors


async def create_click(new_click: NewClick) -> uuid.UUID:
    """Store a click; raise InvalidClickError naming every bad field."""
    errors = click_errors(new_click)
    if new_click.tracking_link_id is not None and not await TrackingLink.exists().where(
        TrackingLink.id == new_click.tracking_link_id
    ):
        message = "no tracking link has this tracking_link_id"
        errors.append(FieldError("tracking_link_id", "not_found", message))
    if errors:
        raise InvalidClickError(errors)
    click = Click(
        created_at=new_click.created_at or datetime.now(UTC),
        player_id=new_click.player_id or None,
        ip=new_click.ip or None,
        user_agent=new_click.user_agent or None,
        referrer=new_click.referrer or None,
        country=new_click.country.upper() if new_click.country else None,
        tracking_link=new_click.tracking_link_id,
        type=new_click.type.lower() if new_click.type else None,
        **{name: new_click.sub_ids.get(name) or None for name in SUB_ID_NAMES},
        browser_family=new_click.browser_family,
        os_family=new_click.os_family,
        device_family=new_click.device_family,
    )
    await click.save()
    return click.id
