"""The validation rules of SPEC.md's pixel table, on the service's input type alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from models.conversions.input import RawConversion, format_amount, parse_conversion
from models.errors import InvalidInputError
from models.store.tables import ConversionType, Currency

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLICK_ID = str(uuid.uuid4())


def parse(**values: str):
    return parse_conversion(RawConversion(click_id=CLICK_ID, **values), received_at=NOW)


def errors_of(**values: str) -> dict[str | None, str]:
    with pytest.raises(InvalidInputError) as raised:
        parse(**values)
    return {error.field: error.code for error in raised.value.errors}


@pytest.mark.parametrize("value", ["install", "INSTALL", "Registration", "dePosit"])
def test_type_is_case_insensitive(value: str) -> None:
    assert parse(type=value).type == ConversionType(value.lower())


@pytest.mark.parametrize(
    ("values", "code"), [({}, "required"), ({"type": "purchase"}, "invalid_choice")]
)
def test_type_is_required_and_one_of_three(values: dict[str, str], code: str) -> None:
    assert errors_of(**values) == {"type": code}


def test_a_malformed_click_id_is_a_field_error() -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_conversion(RawConversion(click_id="not-a-uuid", type="install"), received_at=NOW)
    assert [(e.field, e.code) for e in raised.value.errors] == [("click_id", "invalid_uuid")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_test_flag_accepts_true_false_1_0_in_any_case(value: str, expected: bool) -> None:
    assert parse(type="install", test=value).test is expected


@pytest.mark.parametrize("value", ["yes", "2", "on", "tru"])
def test_test_flag_rejects_other_words(value: str) -> None:
    assert errors_of(type="install", test=value) == {"test": "invalid_boolean"}


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        ("40", 4000),
        ("40.0", 4000),
        ("40.00", 4000),
        ("0.01", 1),
        ("10.5", 1050),
        ("1000000000", 100_000_000_000),
        ("1000000000.00", 100_000_000_000),
        ("007.10", 710),
    ],
)
def test_amounts_are_stored_exactly_as_minor_units(amount: str, minor: int) -> None:
    conversion = parse(type="deposit", amount=amount, currency="eur")
    assert conversion.amount_minor == minor
    assert isinstance(conversion.amount_minor, int)


@pytest.mark.parametrize(
    "amount",
    [
        "NaN",
        "nan",
        "Infinity",
        "1e3",
        "-5",
        "+5",
        "10.005",
        "10.",
        ".5",
        "1,5",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE
        "\uff15",  # FULLWIDTH DIGIT FIVE
        "10 ",
        " 10",
        "0x10",
        "1_000",
        "10.5.1",
    ],
)
def test_amounts_that_are_not_plain_ascii_decimals_are_errors_never_rounded(amount: str) -> None:
    assert errors_of(type="deposit", amount=amount, currency="usd") == {"amount": "invalid_amount"}


@pytest.mark.parametrize("amount", ["0", "0.00", "1000000000.01", "99999999999"])
def test_amounts_must_be_positive_and_at_most_a_billion(amount: str) -> None:
    assert errors_of(type="deposit", amount=amount, currency="gbp") == {"amount": "out_of_range"}


@pytest.mark.parametrize("currency", ["EUR", "usd", "Gbp"])
def test_currency_is_case_insensitive(currency: str) -> None:
    assert parse(type="deposit", amount="1", currency=currency).currency == Currency(
        currency.lower()
    )


def test_an_unknown_currency_is_an_error() -> None:
    assert errors_of(type="deposit", amount="1", currency="btc") == {"currency": "invalid_choice"}


def test_amount_and_currency_go_together() -> None:
    assert errors_of(type="deposit", amount="1") == {"currency": "required"}
    assert errors_of(type="deposit", currency="eur") == {"amount": "required"}


def test_a_deposit_may_carry_neither_amount_nor_currency() -> None:
    conversion = parse(type="deposit")
    assert (conversion.amount_minor, conversion.currency) == (None, None)


@pytest.mark.parametrize("conversion_type", ["install", "registration"])
def test_amount_and_currency_are_errors_on_other_types(conversion_type: str) -> None:
    assert errors_of(type=conversion_type, amount="1", currency="eur") == {
        "amount": "not_allowed",
        "currency": "not_allowed",
    }


@pytest.mark.parametrize("field", ["player_id", "transaction_id"])
def test_identifiers_are_at_most_255_characters(field: str) -> None:
    assert getattr(parse(type="install", **{field: "é" * 255}), field) == "é" * 255
    assert errors_of(type="install", **{field: "x" * 256}) == {field: "too_long"}


@pytest.mark.parametrize("field", ["player_id", "transaction_id"])
@pytest.mark.parametrize("control", ["\x00", "\n", "\x1b", "\x7f", "\x85"])
def test_identifiers_refuse_control_characters(field: str, control: str) -> None:
    assert errors_of(type="install", **{field: f"abc{control}def"}) == {field: "control_character"}


def test_identifiers_keep_unicode_text() -> None:
    assert parse(type="install", player_id="joueur-é-東京").player_id == "joueur-é-東京"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T11:00:00Z", datetime(2026, 11, 25, 11, 0, tzinfo=UTC)),
        ("2026-11-25T13:00:00+02:00", datetime(2026, 11, 25, 11, 0, tzinfo=UTC)),
        ("2026-11-25T06:30:00-04:30", datetime(2026, 11, 25, 11, 0, tzinfo=UTC)),
        # An unencoded "+" in a query string arrives as a space.
        ("2026-11-25T13:00:00 02:00", datetime(2026, 11, 25, 11, 0, tzinfo=UTC)),
        ("2026-11-25T12:04:59Z", datetime(2026, 11, 25, 12, 4, 59, tzinfo=UTC)),
    ],
)
def test_time_is_stored_as_utc(value: str, expected: datetime) -> None:
    conversion = parse(type="install", time=value)
    assert conversion.occurred_at == expected
    assert conversion.occurred_at.utcoffset() == timedelta(0)
    assert conversion.received_at == NOW


def test_time_defaults_to_when_received() -> None:
    conversion = parse(type="install")
    assert conversion.occurred_at == conversion.received_at == NOW


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-11-25T11:00:00", "missing_offset"),
        ("2026-11-25", "invalid_datetime"),
        ("yesterday", "invalid_datetime"),
        ("2026-13-01T00:00:00Z", "invalid_datetime"),
        ("2026-11-25T12:05:01Z", "in_future"),
        ("2027-01-01T00:00:00+00:00", "in_future"),
    ],
)
def test_time_needs_an_offset_and_not_the_future(value: str, code: str) -> None:
    assert errors_of(type="install", time=value) == {"time": code}


def test_every_bad_field_is_named_at_once() -> None:
    assert errors_of(
        type="deposit",
        test="maybe",
        amount="NaN",
        currency="btc",
        time="noon",
        player_id="a\x00b",
        transaction_id="t" * 300,
    ) == {
        "test": "invalid_boolean",
        "amount": "invalid_amount",
        "currency": "invalid_choice",
        "time": "invalid_datetime",
        "player_id": "control_character",
        "transaction_id": "too_long",
    }


@pytest.mark.parametrize(("minor", "text"), [(4000, "40.00"), (1, "0.01"), (1050, "10.50")])
def test_format_amount_gives_back_the_decimal_string(minor: int, text: str) -> None:
    assert format_amount(minor) == text
