"""Signed fires (SPEC part two, "Fire authenticity"), on the real pixel and store.

Signatures here are computed from the SPEC's words, not from the app's code: the
canonical string is built by `canonical_string` below, independently.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

import httpx
import pytest
from piccolo.engine.base import Engine
from pydantic import ValidationError

from api.app import create_app
from api.settings import Settings
from models.conversions.input import RawConversion
from models.conversions.signatures import FireSignature
from models.keys import Scope
from models.store.tables import Conversion, FirePolicy, OfferFireSecret
from models.tracking.offers import create_offer, rotate_fire_secret
from tests.graphql_client import GraphQL, graphql_as
from tests.served_app import CONVERSIONS
from tests.support import count_conversions, new_click, new_link, stored_click, stored_conversions

SIGNED_NAMES = ("amount", "currency", "player_id", "test", "time", "transaction_id", "type")
SPEC_CLICK_ID = uuid.UUID("fd3ba970-2330-4576-94ba-e1efc470bd56")


def canonical_string(click_id: uuid.UUID, query: str) -> str:
    values = dict(parse_qsl(query, keep_blank_values=True))
    signed = "&".join(f"{name}={values[name]}" for name in SIGNED_NAMES if values.get(name))
    return f"{click_id}\n{signed}"


def signature(secret: str, click_id: uuid.UUID, query: str) -> str:
    message = canonical_string(click_id, query).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(secret: str, click_id: uuid.UUID, query: str) -> str:
    return f"/convert/{click_id}?{query}&sig={signature(secret, click_id, query)}"


async def click_of_offer(policy: FirePolicy) -> tuple[uuid.UUID, str | None, uuid.UUID]:
    """A click through a link to a new offer with `policy`: (click, secret, offer)."""
    offer = await create_offer("Casino", "https://operator.example/welcome", policy)
    secret = await rotate_fire_secret(offer.id)
    link = await new_link(offer.id, "partner-1")
    return await new_click(tracking_link_id=link.id), secret, offer.id


def test_the_canonical_string_is_the_specs_example() -> None:
    raw = RawConversion(
        click_id=str(SPEC_CLICK_ID),
        type="deposit",
        currency="usd",
        amount="40",
        transaction_id="123456789",
    )
    assert FireSignature.of(raw, "ab").canonical_string(SPEC_CLICK_ID) == (
        "fd3ba970-2330-4576-94ba-e1efc470bd56\n"
        "amount=40&currency=usd&transaction_id=123456789&type=deposit"
    )
    query = "type=deposit&currency=usd&amount=40&transaction_id=123456789"
    assert canonical_string(SPEC_CLICK_ID, query) == FireSignature.of(raw, None).canonical_string(
        SPEC_CLICK_ID
    )


async def test_open_offers_take_unsigned_fires_and_verify_signed_ones(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.OPEN)
    assert secret is not None
    unsigned = await client.get(f"/convert/{click_id}?type=install")
    assert unsigned.status_code == 202
    query = "type=deposit&currency=eur&amount=10&transaction_id=t-1"
    verified = await client.get(signed(secret, click_id, query))
    assert verified.status_code == 202
    by_type = {row["type"]: row["verified"] for row in await stored_conversions(click_id)}
    assert by_type == {"install": False, "deposit": True}


async def test_a_wrong_signature_is_refused_under_every_policy(client: httpx.AsyncClient) -> None:
    for policy in FirePolicy:
        click_id, _, _ = await click_of_offer(policy)
        response = await client.get(f"/convert/{click_id}?type=install&sig={'0' * 64}")
        assert response.status_code == 401, policy
        assert response.json()["errors"][0]["field"] == "sig"
        assert response.json()["errors"][0]["code"] == "invalid_signature"
        assert response.headers["www-authenticate"].startswith("Signature")
        assert response.headers["cache-control"] == "no-store"
    assert await count_conversions() == 0


async def test_signed_deposits_need_a_signature_and_a_transaction_id(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED_DEPOSITS)
    assert secret is not None
    unsigned = await client.get(f"/convert/{click_id}?type=deposit&currency=eur&amount=5")
    assert unsigned.status_code == 401
    assert unsigned.json()["errors"] == [
        {
            "field": "sig",
            "code": "signature_required",
            "message": "this offer's fires must be signed: add sig",
        }
    ]
    assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 202
    without_transaction = await client.get(
        signed(secret, click_id, "type=deposit&currency=eur&amount=5")
    )
    assert without_transaction.status_code == 422
    assert [(e["field"], e["code"]) for e in without_transaction.json()["errors"]] == [
        ("transaction_id", "required")
    ]
    query = "type=deposit&currency=eur&amount=5&transaction_id=dep-1"
    assert (await client.get(signed(secret, click_id, query))).status_code == 202
    # A replayed signed fire is only ever a repeat.
    assert (await client.get(signed(secret, click_id, query))).status_code == 202
    stored = await stored_conversions(click_id)
    assert [(row["type"], row["verified"]) for row in stored if row["type"] == "deposit"] == [
        ("deposit", True)
    ]
    assert len(stored) == 2


async def test_signed_offers_need_a_signature_on_every_type(client: httpx.AsyncClient) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED)
    assert secret is not None
    for conversion_type in ("install", "registration", "deposit"):
        response = await client.get(f"/convert/{click_id}?type={conversion_type}")
        assert response.json()["errors"][0]["code"] == "signature_required"
    assert (await client.get(signed(secret, click_id, "type=install"))).status_code == 202
    assert [row["verified"] for row in await stored_conversions(click_id)] == [True]


@pytest.mark.parametrize(
    "query",
    [
        "type=deposit&amount=NaN&currency=eur",  # invalid values
        "type=install&type=install",  # a repeated parameter
        "type=bogus",
        "type=install&time=yesterday",
    ],
)
async def test_the_signature_is_checked_before_anything_else(
    client: httpx.AsyncClient, query: str
) -> None:
    click_id, _, _ = await click_of_offer(FirePolicy.SIGNED)
    response = await client.get(f"/convert/{click_id}?{query}")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "signature_required"
    wrong = await client.get(f"/convert/{click_id}?{query}&sig=abc")
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["code"] == "invalid_signature"


async def test_a_tampered_value_is_refused(client: httpx.AsyncClient) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED_DEPOSITS)
    assert secret is not None
    query = "type=deposit&currency=eur&amount=10&transaction_id=t-9"
    sig = signature(secret, click_id, query)
    for tampered in (
        query.replace("amount=10", "amount=10000"),
        query + "&player_id=someone-else",
        query.replace("eur", "EUR"),  # no case folding: the value as received is signed
    ):
        response = await client.get(f"/convert/{click_id}?{tampered}&sig={sig}")
        assert response.status_code == 401, tampered
    other_click, _, _ = await click_of_offer(FirePolicy.SIGNED_DEPOSITS)
    moved = await client.get(f"/convert/{other_click}?{query}&sig={sig}")
    assert moved.status_code == 401
    assert await count_conversions() == 0
    # Ignored parameters are not signed; the hex may be upper case.
    untouched = await client.get(f"/convert/{click_id}?{query}&cb=123&sig={sig.upper()}")
    assert untouched.status_code == 202


async def test_values_are_signed_as_decoded_and_sig_follows_the_rules_of_parameters(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED)
    assert secret is not None
    # `+` is a space and %2B a plus: the decoded values are what is signed.
    query = "type=install&player_id=J%C3%B6rg+M%2B&time=" + quote("2026-01-01T00:00:00+00:00")
    assert canonical_string(click_id, query).endswith(
        "player_id=Jörg M+&time=2026-01-01T00:00:00+00:00&type=install"
    )
    response = await client.get(signed(secret, click_id, query))
    assert response.status_code == 422  # signed, but before the click: the signature passed
    assert response.json()["errors"][0]["code"] == "before_click"
    now = quote(datetime.now(UTC).isoformat())
    ok = f"type=install&player_id=J%C3%B6rg+M%2B&time={now}"
    assert (await client.get(signed(secret, click_id, ok))).status_code == 202
    empty = await client.get(f"/convert/{click_id}?type=registration&sig=")
    assert empty.json()["errors"][0]["code"] == "signature_required"
    sig = signature(secret, click_id, "type=registration")
    twice = await client.get(f"/convert/{click_id}?type=registration&sig={sig}&sig={sig}")
    assert twice.status_code in (401, 422)
    assert {e["field"] for e in twice.json()["errors"]} == {"sig"}
    assert [row["player_id"] for row in await stored_conversions(click_id)] == ["Jörg M+"]


async def test_head_test_fires_and_form_posts_are_checked_the_same_way(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED)
    assert secret is not None
    assert (await client.head(f"/convert/{click_id}?type=install")).status_code == 401
    assert (await client.head(signed(secret, click_id, "type=install"))).status_code == 202
    unsigned_test = await client.get(f"/convert/{click_id}?type=install&test=true")
    assert unsigned_test.status_code == 401
    assert (await client.get(signed(secret, click_id, "type=install&test=true"))).status_code == 202
    form = "type=registration&player_id=a+b"
    body = f"{form}&sig={signature(secret, click_id, form)}"
    posted = await client.post(
        f"/convert/{click_id}",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 202
    assert [(row["type"], row["verified"]) for row in await stored_conversions(click_id)] == [
        ("registration", True)
    ]


async def test_an_offer_without_a_secret_accepts_no_signature(client: httpx.AsyncClient) -> None:
    offer = await create_offer("No secret", "https://operator.example/", FirePolicy.SIGNED)
    link = await new_link(offer.id, "partner")
    click_id = await new_click(tracking_link_id=link.id)
    forged = signed("any secret at all", click_id, "type=install")
    assert (await client.get(forged)).json()["errors"][0]["code"] == "invalid_signature"


async def test_the_replaced_secret_keeps_a_day_of_grace_and_only_one_rotation(
    client: httpx.AsyncClient,
) -> None:
    click_id, first, offer_id = await click_of_offer(FirePolicy.SIGNED)
    assert first is not None
    second = await rotate_fire_secret(offer_id)
    assert second is not None
    assert second != first
    assert (await client.get(signed(first, click_id, "type=install"))).status_code == 202
    assert (await client.get(signed(second, click_id, "type=registration"))).status_code == 202
    # A day later the replaced secret is refused.
    await OfferFireSecret.update(
        {OfferFireSecret.previous_expires_at: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(OfferFireSecret.offer == offer_id)
    query = "type=deposit&currency=eur&amount=1&transaction_id=x"
    assert (await client.get(signed(first, click_id, query))).status_code == 401
    # A second rotation ends the first secret's grace at once.
    third = await rotate_fire_secret(offer_id)
    assert third is not None
    assert (await client.get(signed(first, click_id, query))).status_code == 401
    assert (await client.get(signed(second, click_id, query))).status_code == 202
    assert len(await stored_conversions(click_id)) == 3


async def test_clicks_without_a_link_follow_the_pixel_fire_settings(db: Engine) -> None:
    secret = "s3cret-for-clicks-without-links"
    settings = Settings.from_env(
        {
            "DATABASE_URL": "sqlite:///unused.sqlite",
            "PIXEL_FIRE_POLICY": "SIGNED",
            "PIXEL_FIRE_SECRET": secret,
        }
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        click_id = await new_click()
        assert (await client.get(f"/convert/{click_id}?type=install")).status_code == 401
        assert (await client.get(signed(secret, click_id, "type=install"))).status_code == 202
        # A link's offer has its own policy, whatever the settings say.
        linked, _, _ = await click_of_offer(FirePolicy.OPEN)
        assert (await client.get(f"/convert/{linked}?type=install")).status_code == 202


def test_a_signing_policy_without_a_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs PIXEL_FIRE_SECRET"):
        Settings.from_env({"PIXEL_FIRE_POLICY": "signed_deposits"})
    with pytest.raises(ValidationError):
        Settings.from_env({"PIXEL_FIRE_POLICY": "signed", "PIXEL_FIRE_SECRET": "short"})


UPDATE_OFFER = """
mutation ($id: UUID!, $input: UpdateOfferInput!) {
  updateOffer(id: $id, input: $input) { id name landingUrl firePolicy }
}
"""
ROTATE = "mutation ($offerId: UUID!) { rotateFireSecret(offerId: $offerId) { secret } }"


async def test_graphql_sets_policies_and_rotates_secrets(client: httpx.AsyncClient) -> None:
    admin = await graphql_as(client, Scope.ADMIN)
    created = await admin.data(
        """mutation { createOffer(input: {name: "A", landingUrl: "https://a.example/"}) {
             id firePolicy } }"""
    )
    offer_id = created["createOffer"]["id"]
    assert created["createOffer"]["firePolicy"] == "OPEN"
    updated = await admin.data(
        UPDATE_OFFER, {"id": offer_id, "input": {"firePolicy": "SIGNED_DEPOSITS"}}
    )
    assert updated["updateOffer"] == {
        "id": offer_id,
        "name": "A",
        "landingUrl": "https://a.example/",
        "firePolicy": "SIGNED_DEPOSITS",
    }
    renamed = await admin.data(UPDATE_OFFER, {"id": offer_id, "input": {"name": "B"}})
    assert renamed["updateOffer"]["firePolicy"] == "SIGNED_DEPOSITS"
    secret = (await admin.data(ROTATE, {"offerId": offer_id}))["rotateFireSecret"]["secret"]
    assert len(secret) >= 32
    link = await new_link(uuid.UUID(offer_id), "p")
    click_id = await new_click(tracking_link_id=link.id)
    query = "type=deposit&currency=usd&amount=40&transaction_id=123456789"
    assert (await client.get(signed(secret, click_id, query))).status_code == 202
    unknown = await admin.errors(UPDATE_OFFER, {"id": str(uuid.uuid4()), "input": {"name": "x"}})
    assert unknown[0]["extensions"]["code"] == "BAD_USER_INPUT"
    missing = await admin.errors(ROTATE, {"offerId": str(uuid.uuid4())})
    assert missing[0]["extensions"]["errors"][0]["field"] == "offerId"


async def test_only_admins_change_policies_and_secrets(client: httpx.AsyncClient) -> None:
    offer = await create_offer("A", "https://a.example/")
    writer = await graphql_as(client, Scope.WRITE)
    for query, variables in (
        (ROTATE, {"offerId": str(offer.id)}),
        (UPDATE_OFFER, {"id": str(offer.id), "input": {"firePolicy": "OPEN"}}),
    ):
        errors = await writer.errors(query, variables)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await OfferFireSecret.count() == 0


async def test_api_key_conversions_are_verified_whatever_the_policy(
    client: httpx.AsyncClient,
) -> None:
    click_id, _, _ = await click_of_offer(FirePolicy.SIGNED)
    writer: GraphQL = await graphql_as(client, Scope.WRITE)
    result = await writer.data(
        """mutation ($clickId: UUID!) {
             recordConversion(input: {clickId: $clickId, type: INSTALL}) {
               ... on ConversionRecorded { conversion { verified } } } }""",
        {"clickId": str(click_id)},
    )
    assert result["recordConversion"]["conversion"]["verified"] is True


async def test_secrets_are_never_logged_or_readable(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    click_id, secret, offer_id = await click_of_offer(FirePolicy.SIGNED)
    assert secret is not None
    admin = await graphql_as(client, Scope.ADMIN)
    rotated = (await admin.data(ROTATE, {"offerId": str(offer_id)}))["rotateFireSecret"]["secret"]
    await client.get(signed(rotated, click_id, "type=install"))
    offer = await admin.data(
        "query ($id: UUID!) { offer(id: $id) { id name landingUrl firePolicy } }",
        {"id": str(offer_id)},
    )
    assert secret not in str(offer)
    assert rotated not in str(offer)
    assert secret not in caplog.text
    assert rotated not in caplog.text
    assert await Conversion.count() == 1


async def test_under_a_signing_policy_only_verified_fires_name_the_player(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED_DEPOSITS)
    assert secret is not None
    anonymous = await client.get(f"/convert/{click_id}?type=install&player_id=attacker")
    assert anonymous.status_code == 202
    assert (await stored_click(click_id))["player_id"] is None
    query = "type=deposit&player_id=real-player&transaction_id=d-1"
    assert (await client.get(signed(secret, click_id, query))).status_code == 202
    assert (await stored_click(click_id))["player_id"] == "real-player"
    # On an open offer the first fire with a player id names it, as in part one.
    open_click, _, _ = await click_of_offer(FirePolicy.OPEN)
    await client.get(f"/convert/{open_click}?type=install&player_id=first")
    assert (await stored_click(open_click))["player_id"] == "first"


async def test_a_forged_deposit_cannot_take_a_real_transaction_id(
    client: httpx.AsyncClient,
) -> None:
    click_id, secret, _ = await click_of_offer(FirePolicy.SIGNED_DEPOSITS)
    assert secret is not None
    forged = "type=deposit&currency=eur&amount=1000000000&transaction_id=real-1"
    assert (await client.get(f"/convert/{click_id}?{forged}")).status_code == 401
    real = "type=deposit&currency=eur&amount=40&transaction_id=real-1"
    assert (await client.get(signed(secret, click_id, real))).status_code == 202
    (deposit,) = await stored_conversions(click_id)
    assert deposit["amount_minor"] == 4000
    assert deposit["is_first_deposit"] is True


def test_serve_refuses_a_signing_policy_without_a_usable_secret() -> None:
    for environment, expected in (
        ({"PIXEL_FIRE_POLICY": "signed"}, "needs PIXEL_FIRE_SECRET"),
        ({"PIXEL_FIRE_POLICY": "signed", "PIXEL_FIRE_SECRET": "tiny-secret"}, "PIXEL_FIRE_SECRET"),
    ):
        completed = subprocess.run(
            [CONVERSIONS, "serve", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | environment,
            check=False,
        )
        assert completed.returncode == 2
        assert expected in completed.stderr
        assert "tiny-secret" not in completed.stderr + completed.stdout
