"""API keys for GraphQL clients: random secrets of which only a SHA-256 is stored.

A key is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from models.store.tables import ApiKey

KEY_PREFIX = "cvk_"


class Scope(enum.StrEnum):
    """Each scope includes the ones before it: read < write < admin."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def grants(self, required: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(required)


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    name: str
    scope: Scope
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(name: str, scope: Scope) -> IssuedKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, scope=scope.value, key_hash=hash_key(secret))
    await row.save()
    return IssuedKey(id=row.id, name=name, scope=scope, secret=secret)


async def find_active_key(secret: str) -> ApiKey | None:
    """The unrevoked key with this secret, if any."""
    candidate_hash = hash_key(secret)
    key = await ApiKey.objects().where(ApiKey.key_hash == candidate_hash).first()
    # The lookup is by hash already; comparing again in constant time keeps the
    # check free of timing differences whatever the database's index does.
    if key is None or not hmac.compare_digest(key.key_hash, candidate_hash):
        return None
    if key.revoked_at is not None:
        return None
    return key


async def list_api_keys() -> list[ApiKey]:
    """Every key, revoked ones included, oldest first; secrets are never stored, so never shown."""
    return await ApiKey.objects().order_by(ApiKey.created_at, ApiKey.id)


async def revoke_api_key(key_id: uuid.UUID) -> bool:
    revoked = (
        await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)})
        .where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null())
        .returning(ApiKey.id)
    )
    return bool(revoked)
