"""Signed fires: the canonical string, its HMAC, and which fires must carry one.

The pixel is public and a click id travels in URLs anyone can read, so an offer may
ask that its fires be signed with its fire secret (models/tracking/offers.py). A
signature covers the click id and every part-one parameter the fire carries, exactly
as received, so no value can be changed or added without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from models.conversions.input import RawConversion
from models.conversions.outcomes import SignatureRefused
from models.errors import FieldError
from models.store.tables import ConversionType, FirePolicy

# The parameter that carries a fire's signature; never stored, never logged.
SIGNATURE_PARAMETER = "sig"
# The parameters of the part-one table, in the canonical string's (alphabetical) order.
SIGNED_PARAMETERS = ("amount", "currency", "player_id", "test", "time", "transaction_id", "type")

# A shorter secret could be guessed offline from one signed fire.
MIN_FIRE_SECRET_LENGTH = 16
SIGNATURE_REQUIRED = FieldError(
    "sig", "signature_required", "this offer's fires must be signed: add {sig}"
)
INVALID_SIGNATURE = FieldError(
    "sig", "invalid_signature", "{sig} does not match the fire and the offer's fire secret"
)


@dataclass(frozen=True, slots=True)
class FireSignature:
    """A fire's claim of authenticity: the `sig` it carried, if any, and the report as
    received, before any other reading of its values, which is what a `sig` signs."""

    sig: str | None
    signed: RawConversion

    @classmethod
    def of(cls, raw: RawConversion, sig: str | None) -> FireSignature:
        return cls(sig or None, raw)

    def canonical_string(self, click_id: uuid.UUID) -> str:
        # Built only for a fire that carries a sig: unsigned fires on open offers,
        # the common case, never pay for it.
        signed = "&".join(
            f"{name}={value}" for name in SIGNED_PARAMETERS if (value := getattr(self.signed, name))
        )
        return f"{click_id}\n{signed}"


@dataclass(frozen=True, slots=True)
class FireTerms:
    """What a click's fires are held to: its offer's policy and the secrets valid now."""

    policy: FirePolicy
    # The current secret, then the one it replaced while that is in its grace period.
    secrets: tuple[str, ...] = ()

    @classmethod
    def of_offer(
        cls,
        policy: FirePolicy,
        secret: str | None,
        previous_secret: str | None,
        previous_expires_at: datetime | None,
        *,
        now: datetime,
    ) -> FireTerms:
        secrets = [secret] if secret else []
        if previous_secret and previous_expires_at is not None and previous_expires_at > now:
            secrets.append(previous_secret)
        return cls(policy, tuple(secrets))

    def requires_signature(self, conversion_type: str | None) -> bool:
        if self.policy is FirePolicy.SIGNED:
            return True
        is_deposit = (conversion_type or "").lower() == ConversionType.DEPOSIT
        return self.policy is FirePolicy.SIGNED_DEPOSITS and is_deposit


@dataclass(frozen=True, slots=True)
class PixelFire:
    """A report through the public pixel, held to its click's fire terms; reports
    recorded with an API key carry none and are verified by their key."""

    signature: FireSignature
    # For clicks without a tracking link: PIXEL_FIRE_POLICY and PIXEL_FIRE_SECRET.
    default_terms: FireTerms


def sign(secret: str, canonical_string: str) -> str:
    """The lowercase hex HMAC-SHA256 of the canonical string, keyed with the secret."""
    key, message = secret.encode(), canonical_string.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_fire(
    terms: FireTerms, signature: FireSignature, click_id: uuid.UUID, conversion_type: str | None
) -> SignatureRefused | bool:
    """The fire's refusal (answered 401), or whether it came with a valid signature.

    A signature is checked under every policy: a wrong one is never ignored.
    """
    if signature.sig is None:
        if terms.requires_signature(conversion_type):
            return SignatureRefused(SIGNATURE_REQUIRED)
        return False
    given = signature.sig.lower().encode()
    canonical = signature.canonical_string(click_id)
    # Every secret is compared, in constant time, whichever matches.
    matches = [
        hmac.compare_digest(given, sign(secret, canonical).encode()) for secret in terms.secrets
    ]
    return True if any(matches) else SignatureRefused(INVALID_SIGNATURE)
