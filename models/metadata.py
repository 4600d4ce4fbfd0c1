"""What a browser request tells us beyond its parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestMetadata:
    """Its fields are columns of both a click and a conversion, which take them whole."""

    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    browser_family: str | None = None
    os_family: str | None = None
    device_family: str | None = None

    def columns(self) -> dict[str, Any]:
        # Shallow, unlike dataclasses.asdict, which deep-copies: this runs on every fire.
        return {name: getattr(self, name) for name in METADATA_FIELDS}


METADATA_FIELDS = tuple(field.name for field in fields(RequestMetadata))
