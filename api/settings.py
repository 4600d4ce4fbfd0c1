"""Every setting, typed, read from the environment once: each variable is its field's
name in upper case (`database_url` is `DATABASE_URL`). The README's table lists them.

The other layers take what they need as arguments (api/app.py wires them), so this
module is the one place a setting is named, defaulted and parsed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.logs import LogFormat
from models.conversions.signatures import MIN_FIRE_SECRET_LENGTH, FireTerms
from models.postbacks.dispatcher import DispatchPolicy
from models.postbacks.sending import SendPolicy
from models.rejections.log import RejectionCap
from models.store.engine import Store, create_engine
from models.store.tables import FirePolicy
from models.tracking.visits import QUERY_PARAMETER_NAME
from pixel.client_ip import TrustedProxies
from pixel.enrichment import DEFAULT_COUNTRY_DATA_FILE

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Not a setting: where `conversions serve` has its workers' metrics meet (a directory it
# makes and removes), read by the Prometheus client in every worker.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The request line (the pixel takes a 4 KiB query string) and each header's ": " and CRLF.
REQUEST_LINE_AND_FRAMING_BYTES = 8 * 1024


def _networks(value: Any) -> Any:
    """`10.0.0.0/8,::1` -> networks; a bare address is a network of one."""
    if isinstance(value, str):
        return tuple(
            ipaddress.ip_network(entry.strip(), strict=False)
            for entry in value.split(",")
            if entry.strip()
        )
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Networks = Annotated[tuple[IPNetwork, ...], NoDecode, BeforeValidator(_networks)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    # The store.
    database_url: str = "sqlite:///conversions.sqlite"
    # 0: the app starts (and answers 503) while the database is still down.
    database_pool_min_size: int = Field(default=0, ge=0)
    database_pool_max_size: int = Field(default=10, gt=0)
    # A database that stalls must turn into 503s quickly, not into a pile of waiting
    # requests: connecting, each statement and a whole write each have a deadline.
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0)
    # The budget of one write on PostgreSQL, waiting for a pooled connection included.
    store_timeout_seconds: float = Field(default=1.5, gt=0)
    # SQLite writers wait for the database's lock up to this.
    sqlite_busy_timeout_seconds: float = Field(default=5.0, gt=0)

    # The HTTP faces.
    trusted_proxies: Networks = ()
    retry_after_seconds: int = Field(default=5, gt=0)
    # Fires, and tracking-link visits, per client per minute and worker process (a client
    # is an IPv4 address or an IPv6 /64); 0 turns a limit off. Apart, because operators'
    # servers fire from one address while visits come from players' browsers.
    pixel_rate_limit_per_minute: int = Field(default=0, ge=0)
    track_rate_limit_per_minute: int = Field(default=0, ge=0)
    # Fires on clicks without a tracking link (offers carry their own policy): open,
    # signed_deposits or signed, with the secret that signs them.
    pixel_fire_policy: Annotated[FirePolicy, BeforeValidator(_lower)] = FirePolicy.OPEN
    pixel_fire_secret: SecretStr | None = Field(default=None, min_length=MIN_FIRE_SECRET_LENGTH)
    # Used when a landing URL has no `{click_id}` placeholder.
    click_id_parameter: str = "click_id"
    # A geoip2fast data file: a name inside the package or a path to a newer download.
    geoip_data_file: str = DEFAULT_COUNTRY_DATA_FILE
    # A GraphQL document or form larger than this is refused with 413 before parsing; 1 MiB
    # takes recordConversions' 1,000 inputs.
    max_request_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_request_header_bytes: int = Field(default=16 * 1024, gt=0)

    # The server, below the app (api/server.py): connections and requests each worker
    # takes on at once before answering 503, and how long a request may take to arrive in
    # full (head and body) before its connection is closed.
    max_concurrent_connections: int = Field(default=1000, gt=0)
    request_receive_timeout_seconds: float = Field(default=10.0, gt=0)

    # GraphQL: what one request may ask for.
    graphql_max_depth: int = Field(default=10, gt=0)
    graphql_max_aliases: int = Field(default=30, gt=0)
    graphql_max_tokens: int = Field(default=2000, gt=0)
    graphql_max_page_size: int = Field(default=500, gt=0)
    # The limits above multiply; this bounds their product: the nodes an operation's
    # pages can return, page sizes multiplied along each path (schema/cost.py).
    graphql_max_cost: int = Field(default=10_000, gt=0)
    # An operation still running after this is cancelled and answered with an error.
    graphql_timeout_seconds: float = Field(default=10.0, gt=0)
    # Conversions that may wait for one conversionRecorded subscriber before it is closed
    # (1013): a slow dashboard never holds memory, or a commit, for long.
    graphql_subscription_queue_size: int = Field(default=1000, gt=0)

    # Partner postbacks (docs/postbacks.md): the first retry's delay, doubling up to an
    # hour; attempts before a delivery fails; each request's deadline; whether partners'
    # URLs may reach private, loopback, link-local or reserved addresses (never in
    # production: tests and a receiver on the operator's own network only).
    postback_retry_base_seconds: float = Field(default=30.0, gt=0)
    postback_max_attempts: int = Field(default=10, gt=0)
    postback_timeout_seconds: float = Field(default=10.0, gt=0)
    postback_allow_private_networks: bool = False
    # How often an idle dispatcher looks for due deliveries, in every worker.
    postback_poll_seconds: float = Field(default=1.0, gt=0)

    # Rejected fires (docs/lifecycle.md): kept this many days, and logged at most this
    # many per offer per hour by each worker process; fires without a known offer at most
    # the per-address number per client address, and the per-offer number all together.
    fire_rejection_retention_days: int = Field(default=7, gt=0)
    fire_rejections_per_offer_per_hour: int = Field(default=1000, ge=0)
    fire_rejections_per_address_per_hour: int = Field(default=100, ge=0)

    # Development mode: tracebacks in error pages, GraphiQL and GraphQL introspection;
    # never in production. `conversions serve --dev` sets it.
    conversions_dev: bool = False
    log_level: str = "INFO"
    # text (the servers' own) or json: one JSON object a line, with the request's id.
    log_format: Annotated[LogFormat, BeforeValidator(_lower)] = LogFormat.TEXT

    # Operations (docs/operations.md): GET /metrics, summed over the workers; with a
    # token, only `Authorization: Bearer <token>` reads it.
    metrics_enabled: bool = False
    metrics_token: SecretStr | None = Field(default=None, min_length=16)

    @field_validator("click_id_parameter")
    @classmethod
    def _query_parameter_name(cls, value: str) -> str:
        # It is appended to landing URLs unencoded.
        if not QUERY_PARAMETER_NAME.fullmatch(value):
            raise ValueError("use 1 to 64 letters, digits, '_', '-', '.' or '~'")
        return value

    @model_validator(mode="after")
    def _signing_needs_a_secret(self) -> Settings:
        if self.pixel_fire_policy is not FirePolicy.OPEN and self.pixel_fire_secret is None:
            raise ValueError(
                f"PIXEL_FIRE_POLICY={self.pixel_fire_policy.value} needs PIXEL_FIRE_SECRET: "
                "without it no fire on a click without a tracking link could be signed"
            )
        return self

    @property
    def default_fire_terms(self) -> FireTerms:
        secret = self.pixel_fire_secret
        return FireTerms(self.pixel_fire_policy, (secret.get_secret_value(),) if secret else ())

    @property
    def max_request_head_bytes(self) -> int:
        """What the server reads of a request's head before refusing it: the headers the
        app allows, plus its request line and the framing the app's count leaves out."""
        return self.max_request_header_bytes + REQUEST_LINE_AND_FRAMING_BYTES

    @property
    def proxies(self) -> TrustedProxies:
        return TrustedProxies(self.trusted_proxies)

    @property
    def dispatch_policy(self) -> DispatchPolicy:
        return DispatchPolicy(
            send=SendPolicy(
                timeout_seconds=self.postback_timeout_seconds,
                allow_private_networks=self.postback_allow_private_networks,
            ),
            retry_base_seconds=self.postback_retry_base_seconds,
            max_attempts=self.postback_max_attempts,
            poll_seconds=self.postback_poll_seconds,
            # A claim outlives any send it covers.
            lease_seconds=max(60.0, 6 * self.postback_timeout_seconds),
        )

    @property
    def fire_rejection_retention(self) -> timedelta:
        return timedelta(days=self.fire_rejection_retention_days)

    def rejection_cap(self) -> RejectionCap:
        """A worker's own counts of logged rejected fires."""
        return RejectionCap(
            per_offer_per_hour=self.fire_rejections_per_offer_per_hour,
            per_address_per_hour=self.fire_rejections_per_address_per_hour,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The process environment's settings, or those of `environ` alone (tests)."""
        if environ is None:
            return cls()
        fields = cls.model_fields
        return cls.model_validate(
            {name.lower(): value for name, value in environ.items() if name.lower() in fields}
        )

    def create_engine(self) -> Store:
        return create_engine(
            self.database_url,
            connect_timeout_seconds=self.database_connect_timeout_seconds,
            statement_timeout_seconds=self.database_statement_timeout_seconds,
            store_timeout_seconds=self.store_timeout_seconds,
            sqlite_busy_timeout_seconds=self.sqlite_busy_timeout_seconds,
        )
