"""Typed settings read from the environment, once, when the app is built."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from models.database import DatabaseSettings
from pixel.client_ip import TrustedProxies
from pixel.enrichment import DEFAULT_COUNTRY_DATA_FILE
from pixel.routes import PixelConfig
from pixel.tracking import TrackingConfig
from schema.limits import GraphQLLimits


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _trusted_proxies(value: str) -> TrustedProxies:
    return TrustedProxies(
        tuple(
            ipaddress.ip_network(entry.strip(), strict=False)
            for entry in value.split(",")
            if entry.strip()
        )
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    pixel: PixelConfig = field(default_factory=PixelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # A geoip2fast data file: a name inside the package or a path to a newer download.
    country_data_file: str = DEFAULT_COUNTRY_DATA_FILE
    graphql: GraphQLLimits = field(default_factory=GraphQLLimits)
    # Bounds on what a client may send: a GraphQL document or form larger than the
    # body limit is refused with 413 before it is parsed.
    max_request_body_bytes: int = 64 * 1024
    max_request_header_bytes: int = 16 * 1024
    # Development mode: tracebacks in error pages, GraphiQL and GraphQL introspection;
    # never in production.
    dev: bool = False
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        trusted_proxies = _trusted_proxies(env.get("TRUSTED_PROXIES", ""))
        retry_after_seconds = int(env.get("RETRY_AFTER_SECONDS", PixelConfig.retry_after_seconds))
        return cls(
            database=DatabaseSettings.from_env(env),
            pixel=PixelConfig(
                trusted_proxies=trusted_proxies,
                retry_after_seconds=retry_after_seconds,
                rate_limit_per_minute=int(env.get("PIXEL_RATE_LIMIT_PER_MINUTE", "0")),
            ),
            tracking=TrackingConfig(
                trusted_proxies=trusted_proxies,
                click_id_parameter=env.get("CLICK_ID_PARAMETER", TrackingConfig.click_id_parameter),
                retry_after_seconds=retry_after_seconds,
            ),
            country_data_file=env.get("GEOIP_DATA_FILE", cls.country_data_file),
            graphql=GraphQLLimits(
                max_depth=int(env.get("GRAPHQL_MAX_DEPTH", GraphQLLimits.max_depth)),
                max_aliases=int(env.get("GRAPHQL_MAX_ALIASES", GraphQLLimits.max_aliases)),
                max_tokens=int(env.get("GRAPHQL_MAX_TOKENS", GraphQLLimits.max_tokens)),
                max_page_size=int(env.get("GRAPHQL_MAX_PAGE_SIZE", GraphQLLimits.max_page_size)),
            ),
            max_request_body_bytes=int(
                env.get("MAX_REQUEST_BODY_BYTES", cls.max_request_body_bytes)
            ),
            max_request_header_bytes=int(
                env.get("MAX_REQUEST_HEADER_BYTES", cls.max_request_header_bytes)
            ),
            dev=_bool(env.get("CONVERSIONS_DEV", "false")),
            log_level=env.get("LOG_LEVEL", cls.log_level).upper(),
        )
