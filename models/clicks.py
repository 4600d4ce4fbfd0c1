"""Creating clicks. The tracking link and GraphQL's createClick both come through here."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from models.conversion_input import FieldError, identifier_errors
from models.tables import Click

# Browsers send headers of any size; what a click keeps of them is bounded.
MAX_HEADER_VALUE_LENGTH = 2048
COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")


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
    return errors


async def create_click(new_click: NewClick) -> uuid.UUID:
    """Store a click; raise InvalidClickError naming every bad field."""
    errors = click_errors(new_click)
    if errors:
        raise InvalidClickError(errors)
    click = Click(
        created_at=new_click.created_at or datetime.now(UTC),
        player_id=new_click.player_id or None,
        ip=new_click.ip or None,
        user_agent=new_click.user_agent or None,
        referrer=new_click.referrer or None,
        country=new_click.country.upper() if new_click.country else None,
    )
    await click.save()
    return click.id
