"""One caller's unstorable input never fails another caller (SPEC part two).

Two defences: every text value is checked for NUL, lone surrogates and control
characters before it reaches a write, and a batch the store refuses is retried
report by report, so that only the bad report fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from models.conversions.outcomes import Outcome, Recorded
from models.keys import Scope
from models.partners.partners import create_partner
from models.tracking.offers import create_offer
from models.writes import store_report
from tests.graphql_client import bearer, graphql_as
from tests.support import count_conversions, new_click, stored_conversions, validated_report

UNSTORABLE = ["p\x00", "p\ud800", "p\x1b[31m"]


async def test_a_bad_report_fails_alone_and_its_batch_mates_are_stored(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    click_id = await new_click()
    good = [validated_report(click_id, "deposit", f"good-{number}") for number in range(5)]
    # Past every check, as a bug would let it be: no store can hold a lone surrogate.
    bad = validated_report(click_id, "deposit", "bad")
    bad = replace(bad, record=replace(bad.record, player_id="p\ud800"))
    # Queued in one go, they are written in one batch.
    reports = [*good[:2], bad, *good[2:]]
    results: list[Outcome | BaseException] = await asyncio.gather(
        *(store_report(each) for each in reports), return_exceptions=True
    )
    assert [type(result) for result in results] == [
        Recorded,
        Recorded,
        *[type(results[2])],
        Recorded,
        Recorded,
        Recorded,
    ]
    assert isinstance(results[2], Exception)
    assert "recording them one by one" in caplog.text
    stored = {row["transaction_id"] for row in await stored_conversions(click_id)}
    assert stored == {f"good-{number}" for number in range(5)}


async def test_honest_pixel_fires_beside_a_bad_one_are_all_answered(
    client: httpx.AsyncClient,
) -> None:
    click_id = await new_click()
    fires = [f"/convert/{click_id}?type=deposit&transaction_id=t{n}" for n in range(20)]
    fires.insert(7, f"/convert/{click_id}?type=deposit&transaction_id=%00bad")
    fires.insert(9, f"/convert/{click_id}?type=deposit&player_id=%ED%A0%80")
    answers = await asyncio.gather(*(client.get(fire) for fire in fires))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(202) == 20
    assert statuses.count(422) == 2
    assert await count_conversions() == 20


def _mutations(
    offer_id: str, click_id: str, partner_id: str
) -> list[tuple[str, dict[str, Any], str]]:
    """(mutation, variables with a `BAD` placeholder, the field the error must name)."""
    return [
        (
            "mutation ($input: CreateOfferInput!) { createOffer(input: $input) { id } }",
            {"input": {"name": "BAD", "landingUrl": "https://a.example/"}},
            "name",
        ),
        (
            "mutation ($input: CreateOfferInput!) { createOffer(input: $input) { id } }",
            {"input": {"name": "ok", "landingUrl": "https://a.example/BAD"}},
            "landingUrl",
        ),
        (
            "mutation ($id: UUID!, $input: UpdateOfferInput!) "
            "{ updateOffer(id: $id, input: $input) { id } }",
            {"id": offer_id, "input": {"name": "BAD"}},
            "name",
        ),
        (
            "mutation ($input: CreateTrackingLinkInput!) "
            "{ createTrackingLink(input: $input) { id } }",
            {"input": {"offerId": offer_id, "partnerId": partner_id, "creative": "BAD"}},
            "creative",
        ),
        (
            "mutation ($input: CreatePartnerInput!) { createPartner(input: $input) { id } }",
            {"input": {"name": "BAD"}},
            "name",
        ),
        (
            "mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
            {"input": {"name": "BAD", "scope": "READ"}},
            "name",
        ),
        (
            "mutation ($input: CreateClickInput!) { createClick(input: $input) { id } }",
            {"input": {"playerId": "BAD"}},
            "playerId",
        ),
        (
            "mutation ($input: CreateClickInput!) { createClick(input: $input) { id } }",
            {"input": {"userAgent": "BAD"}},
            "userAgent",
        ),
        (
            "mutation ($input: CreateClickInput!) { createClick(input: $input) { id } }",
            {"input": {"s3": "BAD"}},
            "s3",
        ),
        (
            "mutation ($input: RecordConversionInput!) { recordConversion(input: $input) { "
            "__typename ... on ValidationErrors { errors { field code } } } }",
            {"input": {"clickId": click_id, "type": "INSTALL", "playerId": "BAD"}},
            "playerId",
        ),
    ]


def _substitute(value: Any, bad: str) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, bad) for key, item in value.items()}
    return value.replace("BAD", bad) if isinstance(value, str) else value


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["nul", "lone-surrogate", "escape"])
async def test_every_graphql_text_input_refuses_unstorable_text(
    client: httpx.AsyncClient, bad: str
) -> None:
    admin = await graphql_as(client, Scope.ADMIN)
    offer = await create_offer("Offer", "https://operator.example/")
    click_id = await new_click()
    partner = await create_partner("Partner")
    for mutation, variables, field in _mutations(str(offer.id), str(click_id), str(partner.id)):
        # Escaped JSON: a lone surrogate has no UTF-8 form, so it travels as \ud800.
        body = json.dumps({"query": mutation, "variables": _substitute(variables, bad)})
        response = await client.post(
            "/graphql",
            content=body,
            headers={**bearer(admin.secret), "content-type": "application/json"},
        )
        assert response.status_code == 200, (mutation, response.text)
        body = response.json()
        if "errors" in body:
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", (mutation, error)
            assert any(e["field"].endswith(field) for e in error["extensions"]["errors"])
        else:
            result = body["data"]["recordConversion"]
            assert result["__typename"] == "ValidationErrors"
            assert result["errors"][0]["field"] == field
    assert await count_conversions() == 0


@pytest.mark.parametrize("bad", ["%00", "%1B", "%ED%A0%80", "%C3%28"])
async def test_tracking_link_sub_ids_refuse_unstorable_text(
    client: httpx.AsyncClient, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    offer = await create_offer("Offer", "https://operator.example/")
    admin = await graphql_as(client, Scope.ADMIN)
    link = await admin.data(
        "mutation ($input: CreateTrackingLinkInput!) { createTrackingLink(input: $input) { id } }",
        {"input": {"offerId": str(offer.id), "partnerId": str((await create_partner("p")).id)}},
    )
    response = await client.get(f"/track/{link['createTrackingLink']['id']}?s1=a{bad}b")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "s1"
    assert not caplog.records


async def test_create_click_refuses_an_ipv6_zone_id(client: httpx.AsyncClient) -> None:
    admin = await graphql_as(client, Scope.ADMIN)
    errors = await admin.errors(
        "mutation ($input: CreateClickInput!) { createClick(input: $input) { id } }",
        {"input": {"ip": "fe80::1%" + "interface" * 10}},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert errors[0]["extensions"]["errors"][0]["field"] == "ip"
    created = await admin.data(
        "mutation ($input: CreateClickInput!) { createClick(input: $input) { ip } }",
        {"input": {"ip": "2001:db8::1"}},
    )
    assert created["createClick"]["ip"] == "2001:db8::1"
