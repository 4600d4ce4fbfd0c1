"""Dates, cursors and strings in arguments that no query can take are the client's
error (BAD_USER_INPUT, nothing logged), never an INTERNAL_SERVER_ERROR from the store."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from models.keys import Scope
from tests.graphql_client import bearer, issue_key, seed_click, seed_conversion

NO_ID = "00000000-0000-0000-0000-000000000000"
FILTERED = {
    "conversions": "query($f: ConversionFilter) { conversions(filter: $f) { totalCount } }",
    "clicks": "query($f: ClickFilter) { clicks(filter: $f) { totalCount } }",
}
CONVERSIONS_AFTER = (
    "query($a: String) { conversions(after: $a) { edges { node { id } } pageInfo { endCursor } } }"
)
CLICKS_AFTER = "query($a: String) { clicks(after: $a) { edges { node { id } } } }"
CLICK_CONVERSIONS_AFTER = (
    "query($id: UUID!, $a: String) { click(id: $id) { conversions(after: $a) { totalCount } } }"
)


# Posts a query with its variables; answers the response's JSON.
Ask = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def cursor(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
async def ask(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> Ask:
    """Posts as a client may: JSON with escapes, which can carry lone surrogates (httpx's
    own encoder cannot). Fails the test if anything was logged as an error."""
    secret = await issue_key(Scope.READ)
    click_id = await seed_click()
    await seed_conversion(click_id, "install", player_id="p-1")

    async def post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": {"id": str(click_id), **variables}})
        with caplog.at_level(logging.WARNING):
            response = await client.post(
                "/graphql",
                content=body,
                headers={"Content-Type": "application/json", **bearer(secret)},
            )
        assert response.status_code == 200, response.text
        assert "Traceback" not in response.text
        logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
        assert logged == [], [record.getMessage() for record in logged]
        answer: dict[str, Any] = response.json()
        return answer

    return post


def only_bad_user_input(answer: dict[str, Any]) -> dict[str, Any]:
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", answer
    extensions: dict[str, Any] = error["extensions"]
    return extensions


def field_errors(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in only_bad_user_input(answer)["errors"]]


@pytest.mark.parametrize(
    ("listing", "field", "value"),
    [
        # Valid strings whose UTC instants fall outside the calendar.
        ("conversions", "occurredFrom", "0001-01-01T00:00:00+14:00"),
        ("conversions", "occurredTo", "9999-12-31T23:59:59-14:00"),
        ("clicks", "createdFrom", "0001-01-01T00:00:00+00:01"),
        ("clicks", "createdTo", "9999-12-31T23:59:59.999999-00:01"),
    ],
)
async def test_a_date_outside_the_calendar_is_bad_user_input(
    ask: Ask, listing: str, field: str, value: str
) -> None:
    answer = await ask(FILTERED[listing], {"f": {field: value}})
    assert field_errors(answer) == [(field, "invalid_datetime")]


async def test_a_literal_date_outside_the_calendar_is_bad_user_input(ask: Ask) -> None:
    answer = await ask(
        '{ conversions(filter: {occurredFrom: "0001-01-01T00:00:00+14:00"}) { totalCount } }', {}
    )
    assert field_errors(answer) == [("occurredFrom", "invalid_datetime")]


@pytest.mark.parametrize(
    ("listing", "field", "value"),
    [
        ("conversions", "occurredFrom", "0001-01-01T00:00:00-14:00"),
        ("conversions", "occurredTo", "9999-12-31T23:59:59+14:00"),
        ("clicks", "createdFrom", "0001-01-01T00:00:00Z"),
        ("clicks", "createdTo", "9999-12-31T23:59:59.999999Z"),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_filter(
    ask: Ask, listing: str, field: str, value: str
) -> None:
    answer = await ask(FILTERED[listing], {"f": {field: value}})
    assert "errors" not in answer, answer
    assert next(iter(answer["data"].values()))["totalCount"] == 1


@pytest.mark.parametrize(
    ("listing", "field", "value", "code"),
    [
        ("conversions", "playerId", "p\u0000", "control_character"),
        ("conversions", "playerId", "p\ud800", "invalid_text"),
        ("conversions", "transactionId", "\u0000", "control_character"),
        ("conversions", "transactionId", "\udfff t", "invalid_text"),
        ("conversions", "playerId", "p" * 256, "too_long"),
        ("clicks", "playerId", "\u0000", "control_character"),
        ("clicks", "s1", "a\u0000b", "control_character"),
        ("clicks", "s3", "\ud800", "invalid_text"),
        ("clicks", "s5", "s\u0000", "control_character"),
        ("clicks", "country", "\u0000", "control_character"),
        ("clicks", "country", "d\ud800", "invalid_text"),
    ],
)
async def test_text_no_column_holds_is_bad_user_input(
    ask: Ask, listing: str, field: str, value: str, code: str
) -> None:
    answer = await ask(FILTERED[listing], {"f": {field: value}})
    assert field_errors(answer) == [(field, code)]


async def test_every_bad_filter_value_is_named_at_once(ask: Ask) -> None:
    answer = await ask(
        FILTERED["clicks"],
        {"f": {"playerId": "\u0000", "s2": "\ud800", "createdTo": "9999-12-31T23:59:59-01:00"}},
    )
    assert sorted(field_errors(answer)) == [
        ("createdTo", "invalid_datetime"),
        ("playerId", "control_character"),
        ("s2", "invalid_text"),
    ]


@pytest.mark.parametrize(
    "query", [CONVERSIONS_AFTER, CLICK_CONVERSIONS_AFTER], ids=["conversions", "click-conversions"]
)
@pytest.mark.parametrize(
    "after",
    [
        cursor(f"conversion|0001-01-01T00:00:00+14:00|{NO_ID}"),
        cursor(f"conversion|9999-12-31T23:59:59-14:00|{NO_ID}"),
        cursor(f"conversion|10000-01-01T00:00:00+00:00|{NO_ID}"),
        cursor(f"conversion|2026-11-25T10:00:00|{NO_ID}"),
        cursor(f"conversion|2026-11-25T10:00:00Z|{NO_ID[:-1]}"),
        cursor(f"click|2026-11-25T10:00:00Z|{NO_ID}"),
        cursor("conversion|\u0000|\u0000"),
        cursor(b"\xff\xfe\x00"),
        "garbage!",
        "\u0000",
        "\ud800",
        "",
    ],
    ids=[
        "before-year-1-in-utc",
        "after-year-9999-in-utc",
        "year-10000",
        "no-offset",
        "short-id",
        "another-kind",
        "nul-inside",
        "not-utf8",
        "not-base64",
        "nul",
        "lone-surrogate",
        "empty",
    ],
)
async def test_a_bad_cursor_is_bad_user_input(ask: Ask, query: str, after: str) -> None:
    answer = await ask(query, {"a": after})
    only_bad_user_input(answer)
    assert "is not a valid conversion cursor" in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "after"),
    [
        (CONVERSIONS_AFTER, cursor(f"conversion|0001-01-01T00:00:00Z|{NO_ID}")),
        (CONVERSIONS_AFTER, cursor(f"conversion|9999-12-31T23:59:59.999999Z|{NO_ID}")),
        (CLICKS_AFTER, cursor(f"click|0001-01-01T00:00:00-14:00|{NO_ID}")),
        (CLICKS_AFTER, cursor(f"click|9999-12-31T23:59:59.999999+14:00|{NO_ID}")),
    ],
    ids=["conversions-year-1", "conversions-year-9999", "clicks-year-1", "clicks-year-9999"],
)
async def test_a_cursor_at_an_end_of_the_calendar_pages(ask: Ask, query: str, after: str) -> None:
    answer = await ask(query, {"a": after})
    assert "errors" not in answer, answer
