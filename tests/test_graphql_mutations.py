"""recordConversion and createClick: the pixel's rules and outcomes, as typed results."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from models.keys import Scope
from models.store.tables import Click, Conversion, Stage
from models.tracking.offers import create_offer
from tests.graphql_client import GraphQL, graphql_as, seed_click
from tests.support import new_link

RECORD = """
mutation Record($input: RecordConversionInput!) {
  recordConversion(input: $input) {
    __typename
    ... on ConversionRecorded { test conversion { ...fields } }
    ... on DuplicateConversion { conversion { ...fields } }
    ... on ConversionConflict { message conversion { ...fields } }
    ... on ClickNotFound { clickId }
    ... on ValidationErrors { errors { field code message } }
  }
}
fragment fields on Conversion {
  id type occurredAt receivedAt playerId transactionId currency amount isFirstDeposit source
  ip userAgent referrer country click { id stage playerId }
}
"""

CREATE_CLICK = """
mutation Create($input: CreateClickInput!) {
  createClick(input: $input) { id createdAt stage playerId ip userAgent referrer country }
}
"""


@pytest.fixture
async def graphql(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.WRITE)


async def _record(graphql: GraphQL, **values: Any) -> dict[str, Any]:
    data = await graphql.data(RECORD, {"input": values})
    return data["recordConversion"]


async def test_a_deposit_is_recorded_with_every_field(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    occurred_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    result = await _record(
        graphql,
        clickId=click_id,
        type="DEPOSIT",
        playerId="player-7",
        transactionId="tx-1",
        currency="EUR",
        amount="40.00",
        occurredAt=occurred_at.isoformat(),
    )
    assert result["__typename"] == "ConversionRecorded"
    assert result["test"] is False
    conversion = result["conversion"]
    assert conversion["type"] == "DEPOSIT"
    assert conversion["amount"] == "40.00"
    assert conversion["currency"] == "EUR"
    assert conversion["playerId"] == "player-7"
    assert conversion["transactionId"] == "tx-1"
    assert conversion["isFirstDeposit"] is True
    assert conversion["source"] == "GRAPHQL"
    assert datetime.fromisoformat(conversion["occurredAt"]) == occurred_at
    assert conversion["click"] == {"id": click_id, "stage": "DEPOSIT", "playerId": "player-7"}
    stored = await Conversion.objects().where(Conversion.id == conversion["id"]).first()
    assert stored is not None
    assert (stored.amount_minor, stored.source) == (4000, "graphql")


async def test_an_offset_time_is_checked_and_stored_as_utc(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    result = await _record(
        graphql, clickId=click_id, type="INSTALL", occurredAt="2099-01-01T00:00:00+02:00"
    )
    assert result["errors"] == [
        {
            "field": "occurredAt",
            "code": "in_future",
            "message": "occurredAt is more than 5 minutes in the future",
        }
    ]
    local = (datetime.now(UTC) - timedelta(minutes=2)).astimezone(timezone(timedelta(hours=2)))
    result = await _record(graphql, clickId=click_id, type="INSTALL", occurredAt=local.isoformat())
    occurred = datetime.fromisoformat(result["conversion"]["occurredAt"])
    assert occurred.utcoffset() == timedelta(0)
    assert occurred == local


async def test_test_mode_answers_as_usual_and_stores_nothing(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    result = await _record(
        graphql, clickId=click_id, type="DEPOSIT", amount="5", currency="USD", test=True
    )
    assert result["__typename"] == "ConversionRecorded"
    assert result["test"] is True
    assert result["conversion"]["amount"] == "5.00"
    assert await Conversion.count() == 0
    click = await Click.objects().where(Click.id == click_id).first()
    assert click is not None
    assert click.stage == Stage.NONE


async def test_a_repeated_install_is_a_duplicate_of_the_stored_one(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    first = await _record(graphql, clickId=click_id, type="INSTALL")
    again = await _record(graphql, clickId=click_id, type="INSTALL")
    assert again["__typename"] == "DuplicateConversion"
    assert again["conversion"]["id"] == first["conversion"]["id"]
    assert await Conversion.count() == 1


async def test_a_deposit_retry_is_a_duplicate_and_a_changed_one_a_conflict(
    graphql: GraphQL,
) -> None:
    click_id = str(await seed_click())
    deposit = {"clickId": click_id, "type": "DEPOSIT", "transactionId": "tx-9"}
    first = await _record(graphql, **deposit, amount="10.50", currency="GBP")
    retry = await _record(graphql, **deposit, amount="10.5", currency="GBP")
    assert retry["__typename"] == "DuplicateConversion"
    assert retry["conversion"]["id"] == first["conversion"]["id"]
    conflict = await _record(graphql, **deposit, amount="10.51", currency="GBP")
    assert conflict["__typename"] == "ConversionConflict"
    assert "tx-9" in conflict["message"]
    # The stored deposit comes back, so a client sees what it conflicts with.
    assert conflict["conversion"]["id"] == first["conversion"]["id"]
    assert conflict["conversion"]["amount"] == "10.50"
    other_currency = await _record(graphql, **deposit, amount="10.50", currency="EUR")
    assert other_currency["__typename"] == "ConversionConflict"
    assert await Conversion.count() == 1


async def test_only_the_first_deposit_is_flagged_first(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    first = await _record(graphql, clickId=click_id, type="DEPOSIT", transactionId="a")
    second = await _record(graphql, clickId=click_id, type="DEPOSIT", transactionId="b")
    assert first["conversion"]["isFirstDeposit"] is True
    assert second["conversion"]["isFirstDeposit"] is False
    assert second["conversion"]["amount"] is None


async def test_an_unknown_click_is_click_not_found(graphql: GraphQL) -> None:
    missing = str(uuid.uuid4())
    result = await _record(graphql, clickId=missing, type="REGISTRATION")
    assert result == {"__typename": "ClickNotFound", "clickId": missing}


async def test_every_bad_field_is_named_with_the_inputs_names(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    result = await _record(
        graphql,
        clickId=click_id,
        type="INSTALL",
        playerId="x" * 256,
        transactionId="tab\there",
        amount="10.005",
        occurredAt="2026-11-25T10:00:00",  # naive: no offset
    )
    assert result["__typename"] == "ValidationErrors"
    codes = {(error["field"], error["code"]) for error in result["errors"]}
    assert codes == {
        ("playerId", "too_long"),
        ("transactionId", "control_character"),
        ("amount", "invalid_amount"),
        ("amount", "not_allowed"),
        ("occurredAt", "missing_offset"),
    }
    assert await Conversion.count() == 0


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("NaN", "invalid_amount"),
        ("1e3", "invalid_amount"),
        ("-5", "invalid_amount"),
        ("+5", "invalid_amount"),
        ("10.005", "invalid_amount"),
        ("\u0664\u0660", "invalid_amount"),  # Arabic-Indic digits
        (" 40", "invalid_amount"),
        ("0", "out_of_range"),
        ("1000000000.01", "out_of_range"),
    ],
)
async def test_amounts_follow_the_pixels_rules(graphql: GraphQL, amount: str, code: str) -> None:
    click_id = str(await seed_click())
    result = await _record(graphql, clickId=click_id, type="DEPOSIT", amount=amount, currency="EUR")
    assert result["errors"] == [
        {"field": "amount", "code": code, "message": result["errors"][0]["message"]}
    ]


async def test_amount_and_currency_go_together(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    only_amount = await _record(graphql, clickId=click_id, type="DEPOSIT", amount="1")
    assert [(e["field"], e["code"]) for e in only_amount["errors"]] == [("currency", "required")]
    only_currency = await _record(graphql, clickId=click_id, type="DEPOSIT", currency="EUR")
    assert [(e["field"], e["code"]) for e in only_currency["errors"]] == [("amount", "required")]


async def test_a_time_long_before_the_click_is_refused(graphql: GraphQL) -> None:
    click_id = str(await seed_click(minutes_ago=1))
    result = await _record(
        graphql,
        clickId=click_id,
        type="INSTALL",
        occurredAt=(datetime.now(UTC) - timedelta(minutes=30)).isoformat(),
    )
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("occurredAt", "before_click")]


async def test_a_malformed_click_id_is_a_graphql_input_error(graphql: GraphQL) -> None:
    """The UUID scalar refuses it before the service sees it; nothing is stored."""
    errors = await graphql.errors(RECORD, {"input": {"clickId": "not-a-uuid", "type": "INSTALL"}})
    assert "UUID" in errors[0]["message"] or "clickId" in errors[0]["message"]
    assert await Conversion.count() == 0


async def test_the_pixel_then_the_mutation_is_a_duplicate(
    graphql: GraphQL, client: httpx.AsyncClient
) -> None:
    click_id = str(await seed_click())
    fired = await client.get(f"/convert/{click_id}", params={"type": "install"})
    assert fired.status_code == 202
    result = await _record(graphql, clickId=click_id, type="INSTALL")
    assert result["__typename"] == "DuplicateConversion"
    assert result["conversion"]["source"] == "PIXEL"
    assert await Conversion.count() == 1


async def test_the_mutation_then_the_pixel_with_another_amount_is_409(
    graphql: GraphQL, client: httpx.AsyncClient
) -> None:
    click_id = str(await seed_click())
    recorded = await _record(
        graphql,
        clickId=click_id,
        type="DEPOSIT",
        transactionId="tx-shared",
        amount="25.00",
        currency="EUR",
    )
    assert recorded["__typename"] == "ConversionRecorded"
    same = await client.get(
        f"/convert/{click_id}",
        params={
            "type": "deposit",
            "transaction_id": "tx-shared",
            "amount": "25",
            "currency": "eur",
        },
    )
    assert same.status_code == 202
    changed = await client.get(
        f"/convert/{click_id}",
        params={
            "type": "deposit",
            "transaction_id": "tx-shared",
            "amount": "26",
            "currency": "eur",
        },
    )
    assert changed.status_code == 409
    assert await Conversion.count() == 1


async def test_create_click_stores_every_given_field(graphql: GraphQL) -> None:
    data = await graphql.data(
        CREATE_CLICK,
        {
            "input": {
                "playerId": "player-1",
                "ip": "2001:db8::1",
                "userAgent": "Mozilla/5.0",
                "referrer": "https://partner.example/offer",
                "country": "de",
            }
        },
    )
    click = data["createClick"]
    assert click["stage"] == "NONE"
    assert (click["playerId"], click["ip"], click["userAgent"], click["country"]) == (
        "player-1",
        "2001:db8::1",
        "Mozilla/5.0",
        "DE",
    )
    assert click["referrer"] == "https://partner.example/offer"
    created_at = datetime.fromisoformat(click["createdAt"])
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)
    assert await Click.exists().where(Click.id == click["id"])


async def test_create_click_needs_no_field(graphql: GraphQL) -> None:
    data = await graphql.data(CREATE_CLICK, {"input": {}})
    assert data["createClick"]["playerId"] is None
    assert await Click.count() == 1


async def test_create_click_names_every_bad_field(graphql: GraphQL) -> None:
    errors = await graphql.errors(
        CREATE_CLICK,
        {
            "input": {
                "playerId": "bell\u0007",
                "ip": "999.1.1.1",
                "userAgent": "u" * 2049,
                "country": "DEU",
            }
        },
    )
    [error] = errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {(item["field"], item["code"]) for item in error["extensions"]["errors"]} == {
        ("playerId", "control_character"),
        ("ip", "invalid_ip"),
        ("userAgent", "too_long"),
        ("country", "invalid_country"),
    }
    assert await Click.count() == 0


async def test_a_click_created_by_mutation_takes_pixel_fires(
    graphql: GraphQL, client: httpx.AsyncClient
) -> None:
    click_id = (await graphql.data(CREATE_CLICK, {"input": {}}))["createClick"]["id"]
    fired = await client.get(f"/convert/{click_id}", params={"type": "registration"})
    assert fired.status_code == 202
    click = await Click.objects().where(Click.id == click_id).first()
    assert click is not None
    assert click.stage == Stage.REGISTRATION


async def _tracking_link_id() -> str:
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome")
    return str((await new_link(offer.id, "partner-42")).id)


async def test_create_click_takes_the_tracking_link_marketing_type_and_sub_ids(
    graphql: GraphQL,
) -> None:
    tracking_link_id = await _tracking_link_id()
    data = await graphql.data(
        "mutation($input: CreateClickInput!) { createClick(input: $input) {"
        " trackingLinkId type subIds { s1 s2 s3 s4 s5 } } }",
        {
            "input": {
                "trackingLinkId": tracking_link_id,
                "type": "SOCIAL",
                "s1": "campaign-7",
                "s3": "ad group",
            }
        },
    )
    assert data["createClick"] == {
        "trackingLinkId": tracking_link_id,
        "type": "SOCIAL",
        "subIds": {"s1": "campaign-7", "s2": None, "s3": "ad group", "s4": None, "s5": None},
    }


async def test_create_click_refuses_an_unknown_tracking_link_and_bad_sub_ids(
    graphql: GraphQL,
) -> None:
    errors = await graphql.errors(
        CREATE_CLICK,
        {"input": {"trackingLinkId": str(uuid.uuid4()), "s2": "x" * 256, "s4": "new\nline"}},
    )
    assert {(item["field"], item["code"]) for item in errors[0]["extensions"]["errors"]} == {
        ("trackingLinkId", "not_found"),
        ("s2", "too_long"),
        ("s4", "control_character"),
    }
    assert await Click.count() == 0


async def test_datetimes_read_one_way_utc_to_the_microsecond(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    local = occurred.astimezone(timezone(timedelta(hours=-3, minutes=-30)))
    result = await _record(graphql, clickId=click_id, type="INSTALL", occurredAt=local.isoformat())
    conversion = result["conversion"]
    for value in (conversion["occurredAt"], conversion["receivedAt"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", value), value
    assert conversion["occurredAt"] == occurred.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


async def test_every_graphql_error_carries_a_code(graphql: GraphQL) -> None:
    cases = {
        "{ clicks(first: 1) { totalCount ": "GRAPHQL_PARSE_FAILED",
        "{ clickz { totalCount } }": "GRAPHQL_VALIDATION_FAILED",
        "{ clicks(first: -1) { totalCount } }": "BAD_USER_INPUT",
    }
    for query, code in cases.items():
        [error] = await graphql.errors(query)
        assert error["extensions"]["code"] == code, (query, error)
    [error] = await graphql.errors(
        "query($id: UUID!) { click(id: $id) { id } }", {"id": "not-a-uuid"}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_click_input_error_names_the_field_as_graphql_spells_it(graphql: GraphQL) -> None:
    [error] = await graphql.errors(
        'mutation { createClick(input: {playerId: "a\\u0000b", userAgent: "x"}) { id } }'
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    [field_error] = error["extensions"]["errors"]
    assert field_error["field"] == "playerId"
    assert field_error["message"].startswith("playerId ")
