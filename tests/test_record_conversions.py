"""recordConversions: up to 1,000 reports in one request, one result per input in
order, each exactly as recordConversion would answer it."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from models.keys import Scope
from models.store.tables import Conversion
from tests.graphql_client import GraphQL, graphql_as, seed_click

RESULT = """
    __typename
    ... on ConversionRecorded { test conversion { ...fields } }
    ... on DuplicateConversion { conversion { ...fields } }
    ... on ConversionConflict { message conversion { ...fields } }
    ... on ClickNotFound { clickId }
    ... on ValidationErrors { errors { field code message } }
"""
FIELDS = """
fragment fields on Conversion {
  id type playerId transactionId currency amount isFirstDeposit source click { id }
}
"""
RECORD_MANY = (
    "mutation ($inputs: [RecordConversionInput!]!) { recordConversions(inputs: $inputs) {"
    + RESULT
    + "} }"
    + FIELDS
)
RECORD_ONE = (
    "mutation ($input: RecordConversionInput!) { recordConversion(input: $input) {"
    + RESULT
    + "} }"
    + FIELDS
)


@pytest.fixture
async def graphql(client: httpx.AsyncClient) -> GraphQL:
    return await graphql_as(client, Scope.WRITE)


def _mixed_inputs(click_id: str, missing_click_id: str) -> list[dict[str, Any]]:
    """Every outcome, repeats of earlier inputs of the same list included."""
    deposit = {"clickId": click_id, "type": "DEPOSIT", "transactionId": "tx-1"}
    return [
        {"clickId": click_id, "type": "INSTALL", "playerId": "p-1"},
        {**deposit, "amount": "40.00", "currency": "EUR"},
        {**deposit, "amount": "40.00", "currency": "EUR"},
        {**deposit, "amount": "50.00", "currency": "EUR"},
        {"clickId": missing_click_id, "type": "INSTALL"},
        {"clickId": click_id, "type": "DEPOSIT", "amount": "10.005", "currency": "USD"},
        {"clickId": click_id, "type": "INSTALL"},
        {"clickId": click_id, "type": "REGISTRATION", "test": True},
    ]


def _blanked(answer: Any, ids: dict[str, str]) -> Any:
    """An answer with its ids named by role, to compare answers about different rows."""
    if isinstance(answer, dict):
        return {key: _blanked(value, ids) for key, value in answer.items()}
    if isinstance(answer, list):
        return [_blanked(value, ids) for value in answer]
    if isinstance(answer, str):
        try:
            uuid.UUID(answer)
        except ValueError:
            return answer
        return ids.setdefault(answer, f"<id {len(ids)}>")
    return answer


async def test_each_result_is_what_record_conversion_answers_in_order(graphql: GraphQL) -> None:
    bulk_click, single_click = str(await seed_click()), str(await seed_click())
    missing = str(uuid.uuid4())
    data = await graphql.data(RECORD_MANY, {"inputs": _mixed_inputs(bulk_click, missing)})
    bulk = data["recordConversions"]

    # The same reports one request at a time, on a click of their own.
    single = [
        (await graphql.data(RECORD_ONE, {"input": one}))["recordConversion"]
        for one in _mixed_inputs(single_click, missing)
    ]
    assert [result["__typename"] for result in bulk] == [
        "ConversionRecorded",
        "ConversionRecorded",
        "DuplicateConversion",
        "ConversionConflict",
        "ClickNotFound",
        "ValidationErrors",
        "DuplicateConversion",
        "ConversionRecorded",
    ]
    assert _blanked(bulk, {bulk_click: "<click>", missing: "<missing>"}) == _blanked(
        single, {single_click: "<click>", missing: "<missing>"}
    )
    # The repeat of the deposit names the deposit stored by the input before it.
    assert bulk[2]["conversion"]["id"] == bulk[1]["conversion"]["id"]
    assert bulk[6]["conversion"]["id"] == bulk[0]["conversion"]["id"]
    assert bulk[7]["test"] is True
    assert bulk[5]["errors"][0]["field"] == "amount"
    stored = await Conversion.select(Conversion.type, Conversion.source).where(
        Conversion.click == bulk_click
    )
    assert sorted((row["type"], row["source"]) for row in stored) == [
        ("deposit", "graphql"),
        ("install", "graphql"),
    ]


async def test_the_same_transaction_id_twice_stores_one_row(graphql: GraphQL) -> None:
    click_id = str(await seed_click())
    deposit = {
        "clickId": click_id,
        "type": "DEPOSIT",
        "transactionId": "order-9",
        "amount": "25.00",
        "currency": "GBP",
    }
    data = await graphql.data(RECORD_MANY, {"inputs": [deposit, deposit]})
    kinds = [result["__typename"] for result in data["recordConversions"]]
    assert kinds == ["ConversionRecorded", "DuplicateConversion"]
    assert await Conversion.count().where(Conversion.click == click_id) == 1


async def test_a_thousand_inputs_fit_in_one_request(graphql: GraphQL) -> None:
    clicks = await asyncio.gather(*(seed_click() for _ in range(250)))
    inputs = [
        {
            "clickId": str(click_id),
            "type": conversion_type,
            "playerId": f"player-{number}",
            **(
                {"transactionId": f"order-{number}-{conversion_type}-{kind}", "amount": "40.00"}
                | {"currency": "EUR"}
                if conversion_type == "DEPOSIT"
                else {}
            ),
        }
        for number, click_id in enumerate(clicks)
        for conversion_type, kind in (
            ("INSTALL", ""),
            ("REGISTRATION", ""),
            ("DEPOSIT", "a"),
            ("DEPOSIT", "b"),
        )
    ]
    assert len(inputs) == 1_000
    # Past the 64 KiB that bodies were once held to.
    assert len(json.dumps({"query": RECORD_MANY, "variables": {"inputs": inputs}})) > 64 * 1024
    data = await graphql.data(RECORD_MANY, {"inputs": inputs})
    results = data["recordConversions"]
    assert [result["__typename"] for result in results] == ["ConversionRecorded"] * 1_000
    assert [result["conversion"]["click"]["id"] for result in results] == [
        one["clickId"] for one in inputs
    ]
    assert await Conversion.count() == 1_000


async def test_more_than_a_thousand_inputs_are_refused_and_nothing_is_stored(
    graphql: GraphQL,
) -> None:
    click_id = str(await seed_click())
    inputs = [
        {"clickId": click_id, "type": "DEPOSIT", "transactionId": f"t-{number}"}
        for number in range(1_001)
    ]
    [error] = await graphql.errors(RECORD_MANY, {"inputs": inputs})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["field"] == "inputs"
    assert "at most 1000" in error["extensions"]["errors"][0]["message"]
    assert await Conversion.count() == 0


async def test_an_empty_list_records_nothing(graphql: GraphQL) -> None:
    assert await graphql.data(RECORD_MANY, {"inputs": []}) == {"recordConversions": []}


async def test_a_read_key_may_not_record(client: httpx.AsyncClient) -> None:
    reader = await graphql_as(client, Scope.READ)
    click_id = str(await seed_click())
    [error] = await reader.errors(
        RECORD_MANY, {"inputs": [{"clickId": click_id, "type": "INSTALL"}]}
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert await Conversion.count() == 0
