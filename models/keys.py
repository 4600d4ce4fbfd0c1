"""API keys for GraphQL clients: random secrets of which only a SHA-256 is stored.

A key is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
A key may be bound to a partner: it then sees only that partner's data
(models/partners/access.py), and it is never an admin key.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from models.errors import FieldError, InvalidInputError, text_errors
from models.paging import Cursor
from models.partners.access import EVERYTHING, Access
from models.store.reads import TableReads
from models.store.tables import ApiKey, Partner

KEY_PREFIX = "cvk_"
MAX_KEY_NAME_LENGTH = 100


class Scope(enum.StrEnum):
    """Each scope includes the ones before it: read < write < admin."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def grants(self, required: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(required)


@dataclass(kw_only=True)
class ApiKeyRecord:
    """A key as it may be shown: never its secret, which is not stored."""

    CURSOR_KIND: ClassVar[str] = "api_key"

    id: uuid.UUID
    name: str
    scope: Scope
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None
    partner_id: uuid.UUID | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)

    @property
    def access(self) -> Access:
        """What requests with this key see."""
        return EVERYTHING if self.partner_id is None else Access(self.partner_id)


READS = TableReads(ApiKey, ApiKeyRecord, ApiKey.created_at)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: its record and its secret, which is shown this once."""

    record: ApiKeyRecord
    secret: str

    @property
    def id(self) -> uuid.UUID:
        return self.record.id


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(name: str, scope: Scope, partner_id: uuid.UUID | None = None) -> IssuedKey:
    """Store a new key; raise InvalidInputError naming every bad field."""
    name = name.strip()
    errors = text_errors("name", name, max_length=MAX_KEY_NAME_LENGTH, required=True)
    if partner_id is not None:
        if scope is Scope.ADMIN:
            message = "a partner's key is never admin: {scope} must be read or write"
            errors.append(FieldError("scope", "not_allowed", message))
        if not await Partner.exists().where(Partner.id == partner_id):
            errors.append(FieldError("partner_id", "not_found", "no partner has this {partner_id}"))
    if errors:
        raise InvalidInputError(errors)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        scope=scope.value,
        key_hash=hash_key(secret),
        created_at=datetime.now(UTC),
        partner=partner_id,
    )
    await row.save()
    return IssuedKey(READS.mapping.record(row.to_dict()), secret)


async def find_active_key(secret: str) -> ApiKeyRecord | None:
    """The unrevoked key with this secret, if any."""
    candidate_hash = hash_key(secret)
    row = await ApiKey.select().where(ApiKey.key_hash == candidate_hash).first()
    if row is None:
        return None
    key = READS.mapping.record(row)
    # The lookup is by hash already; comparing again in constant time keeps the
    # check free of timing differences whatever the database's index does.
    if not hmac.compare_digest(key.key_hash, candidate_hash) or key.revoked_at is not None:
        return None
    return key


async def list_api_keys() -> list[ApiKeyRecord]:
    """Every key, revoked ones included, oldest first; secrets are never stored, so never shown."""
    rows = await ApiKey.select().order_by(ApiKey.created_at, ApiKey.id)
    return [READS.mapping.record(row) for row in rows]


async def revoke_api_key(key_id: uuid.UUID) -> ApiKeyRecord | None:
    """Revoke an active key: refused from its next request on. None if no active key
    has this id (none ever did, or it is revoked already)."""
    revoked = (
        await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)})
        .where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null())
        .returning(*ApiKey.all_columns())
    )
    return READS.mapping.record(revoked[0]) if revoked else None
