"""A postback URL template's macros: which exist, how each value is spelled, and the
template checks made when a rule is saved.

A value is percent-encoded whole (`/`, `&` and `=` included), so no value can add a
query parameter or change the path; a missing value is empty.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from models.errors import FieldError, text_errors

MAX_URL_TEMPLATE_LENGTH = 2048
SUB_IDS = ("s1", "s2", "s3", "s4", "s5")
MACROS = frozenset(
    {
        "click_id",
        "conversion_id",
        "event",
        "type",
        "status",
        "transaction_id",
        "amount",
        "currency",
        "occurred_at",
        "offer_id",
        "partner_id",
        "tracking_link_id",
        "delivery_id",
        *SUB_IDS,
    }
)
_MACRO = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, kw_only=True)
class MacroValues:
    """What one delivery tells its partner; never the player id."""

    click_id: uuid.UUID
    conversion_id: uuid.UUID
    event: str
    type: str
    status: str
    transaction_id: str | None
    amount_minor: int | None
    currency: str | None
    occurred_at: datetime
    offer_id: uuid.UUID | None
    partner_id: uuid.UUID
    tracking_link_id: uuid.UUID | None
    sub_ids: Mapping[str, str | None]
    delivery_id: uuid.UUID

    def spelled(self) -> dict[str, str]:
        """Every macro's text before encoding: lowercase names, uppercase currency, two
        decimals, UTC ending in Z."""
        amount = self.amount_minor
        return {
            "click_id": str(self.click_id),
            "conversion_id": str(self.conversion_id),
            "event": self.event.lower(),
            "type": self.type.lower(),
            "status": self.status.lower(),
            "transaction_id": self.transaction_id or "",
            # Every currency taken has two decimals (EUR, USD, GBP); minor units stay exact.
            "amount": "" if amount is None else f"{amount // 100}.{amount % 100:02d}",
            "currency": (self.currency or "").upper(),
            "occurred_at": self.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "offer_id": str(self.offer_id or ""),
            "partner_id": str(self.partner_id),
            "tracking_link_id": str(self.tracking_link_id or ""),
            "delivery_id": str(self.delivery_id),
            **{name: self.sub_ids.get(name) or "" for name in SUB_IDS},
        }


def render(template: str, values: MacroValues) -> str:
    """The template with every macro replaced by its percent-encoded value."""
    spelled = values.spelled()
    return _MACRO.sub(lambda match: quote(spelled.get(match[1], ""), safe=""), template)


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for private, loopback, link-local, reserved, shared and multicast addresses,
    and for IPv4-mapped IPv6 forms of them."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def template_errors(field: str, template: str, *, allow_private_networks: bool) -> list[FieldError]:
    """Every reason `template` cannot be saved, each naming `field`."""
    errors = text_errors(field, template, max_length=MAX_URL_TEMPLATE_LENGTH, required=True)
    if errors:
        return errors
    named = "{" + field + "}"
    unknown = sorted({name for name in _MACRO.findall(template) if name not in MACROS})
    if unknown:
        listed = ", ".join("{{" + name + "}}" for name in unknown)
        errors.append(FieldError(field, "unknown_macro", f"{named} has unknown macros: {listed}"))
    # The URL a delivery would have, every macro empty: what a partner's server receives.
    try:
        parts = urlsplit(_MACRO.sub("", template))
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in {"http", "https"} or not host:
        errors.append(FieldError(field, "invalid_url", f"{named} must be an absolute http(s) URL"))
        return errors
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return errors  # a host name: checked when each delivery is sent
    if not allow_private_networks and not is_public_address(address):
        errors.append(
            FieldError(
                field,
                "blocked_address",
                f"{named} names a private, loopback or link-local address; "
                "POSTBACK_ALLOW_PRIVATE_NETWORKS=true allows it",
            )
        )
    return errors
