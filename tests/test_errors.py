"""The one error module: field names spelled per face, and the one text check."""

from __future__ import annotations

import pytest

from models.errors import FieldError, error_body, text_errors
from schema.errors import graphql_naming


def test_a_message_names_its_fields_as_each_face_spells_them() -> None:
    error = FieldError("currency", "required", "{currency} is required when {amount} is given")
    assert error.named().message == "currency is required when amount is given"
    renamed = error.named(graphql_naming({"currency": "money"}))
    assert (renamed.field, renamed.message) == ("money", "money is required when amount is given")
    camel = FieldError("player_id", "too_long", "{player_id} is long").named(graphql_naming())
    assert (camel.field, camel.message) == ("playerId", "playerId is long")
    literal = FieldError("landing_url", "invalid_url", "use ?ref={{click_id}}")
    assert literal.named().message == "use ?ref={click_id}"


def test_the_json_envelope() -> None:
    body = error_body([FieldError(None, "rate_limited", "slow down")])
    assert body == b'{"errors":[{"field":null,"code":"rate_limited","message":"slow down"}]}'


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("a\x00b", "control_character"),
        ("a\nb", "control_character"),
        ("p\ud800", "invalid_text"),
        ("x" * 11, "too_long"),
    ],
)
def test_text_that_no_store_or_reader_should_hold_is_refused(value: str, code: str) -> None:
    [error] = text_errors("player_id", value, max_length=10)
    assert (error.field, error.code) == ("player_id", code)
    assert error.named().message.startswith("player_id ")


def test_clean_text_passes_and_empty_counts_as_absent() -> None:
    assert text_errors("name", "Zoë ✓", max_length=10) == []
    assert text_errors("name", "", max_length=10) == []
    assert [e.code for e in text_errors("name", "", max_length=10, required=True)] == ["required"]
