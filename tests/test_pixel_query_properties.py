"""Properties of the pixel's input path, from raw query bytes to a typed conversion.

Whatever bytes arrive, reading and validating them ends in values or field errors, never
in another exception (which would be a 500). Whatever valid report an operator builds
with a standard URL encoder comes out as the conversion they meant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.conversions.input import (
    MAX_AMOUNT_MINOR,
    ConversionInput,
    RawConversion,
    parse_conversion,
    validation_errors,
)
from models.conversions.signatures import SIGNATURE_PARAMETER
from models.errors import FieldError, InvalidInputError
from models.store.tables import MAX_ID_LENGTH, ConversionType, Currency
from pixel.query import PIXEL_PARAMETERS, read_parameters

RECEIVED_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# No example database: CI runs from a clean checkout and nothing should appear in the tree.
PROPERTY_SETTINGS = settings(
    max_examples=200, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Names the reader cares about, near misses, and the junk that really arrives.
parameter_names = st.one_of(
    st.sampled_from(sorted(PIXEL_PARAMETERS)),
    st.sampled_from(["TYPE", "type ", "amount[]", "cb", "method", "", "%74ype", "ty%00pe"]),
    st.text(max_size=12),
)
utc_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Any moment, with the calendar's first and last days drawn often: converting them to
# UTC once overflowed into a 500.
time_values = st.one_of(
    st.datetimes(timezones=utc_offsets),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=utc_offsets),
    st.datetimes(min_value=datetime(9999, 12, 31), timezones=utc_offsets),
).map(lambda moment: quote(moment.isoformat()).encode())
raw_values = st.one_of(
    time_values,
    st.binary(max_size=40).map(lambda value: quote(value, safe="").encode()),
    st.binary(max_size=40).map(lambda value: value.replace(b"&", b"").replace(b"=", b"")),
    st.sampled_from(
        [b"deposit", b"%ff", b"%C3%28", b"%", b"%4", b"NaN", b"1e3", b"+", b"%00", b"\xff"]
    ),
    st.text(max_size=40).map(lambda value: quote(value).encode()),
)


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """Pairs joined the way browsers do, with stray separators and raw bytes thrown in."""
    pairs = draw(st.lists(st.tuples(parameter_names, raw_values), max_size=10))
    encoded = [quote(name).encode() + b"=" + value for name, value in pairs]
    encoded += draw(st.lists(st.sampled_from([b"", b"=", b"&", b"==", b"type"]), max_size=3))
    return b"&".join(draw(st.permutations(encoded)))


any_query = st.one_of(st.binary(max_size=300), query_strings())
any_click_id = st.one_of(st.uuids().map(str), st.text(max_size=40))


def read_and_parse(click_id: str, *parts: bytes) -> ConversionInput | list[FieldError]:
    values, reading_errors = read_parameters(*parts)
    assert set(values) <= PIXEL_PARAMETERS
    assert all(error.field in PIXEL_PARAMETERS for error in reading_errors)
    assert not {error.field for error in reading_errors} & set(values)
    values.pop(SIGNATURE_PARAMETER, None)
    report = RawConversion(click_id=click_id, **values)
    if reading_errors:
        return reading_errors + validation_errors(report, reading_errors)
    try:
        return parse_conversion(report, received_at=RECEIVED_AT)
    except InvalidInputError as invalid:
        return invalid.errors


@PROPERTY_SETTINGS
@given(click_id=any_click_id, query=any_query)
def test_any_query_string_gives_a_conversion_or_field_errors(click_id: str, query: bytes) -> None:
    outcome = read_and_parse(click_id, query)
    assert isinstance(outcome, ConversionInput) or outcome


@PROPERTY_SETTINGS
@given(click_id=any_click_id, query=any_query, body=any_query)
def test_any_query_string_and_form_body_give_a_conversion_or_field_errors(
    click_id: str, query: bytes, body: bytes
) -> None:
    outcome = read_and_parse(click_id, query, body)
    assert isinstance(outcome, ConversionInput) or outcome


@PROPERTY_SETTINGS
@given(time=time_values)
def test_any_moment_with_an_offset_gives_a_conversion_or_a_time_error(time: bytes) -> None:
    outcome = read_and_parse(str(uuid.uuid4()), b"type=install&time=" + time)
    assert isinstance(outcome, ConversionInput) or {error.field for error in outcome} == {"time"}


@dataclass(frozen=True)
class ValidReport:
    """A valid report as an operator would send it, and the conversion it must become."""

    parameters: dict[str, str]
    expected: ConversionInput


identifiers = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=MAX_ID_LENGTH
)


def random_case(draw: st.DrawFn, word: str) -> str:
    return "".join(
        character.upper() if draw(st.booleans()) else character.lower() for character in word
    )


def amount_spellings(amount_minor: int) -> list[str]:
    units, cents = divmod(amount_minor, 100)
    spellings = [f"{units}.{cents:02d}"]
    if cents == 0:
        spellings.append(str(units))
    if cents % 10 == 0:
        spellings.append(f"{units}.{cents // 10}")
    return spellings


@st.composite
def valid_reports(draw: st.DrawFn) -> ValidReport:
    click_id = draw(st.uuids())
    conversion_type = draw(st.sampled_from(list(ConversionType)))
    parameters = {"type": random_case(draw, conversion_type.value)}
    expected: dict[str, object] = {}

    test = draw(st.none() | st.sampled_from(["true", "false", "1", "0", "TRUE", "False"]))
    if test is not None:
        parameters["test"] = test
        expected["test"] = test.lower() in {"true", "1"}
    for name in ("player_id", "transaction_id"):
        identifier = draw(st.none() | identifiers)
        if identifier is not None:
            parameters[name] = expected[name] = identifier
    if conversion_type is ConversionType.DEPOSIT and draw(st.booleans()):
        amount_minor = draw(st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
        currency = draw(st.sampled_from(list(Currency)))
        parameters["amount"] = draw(st.sampled_from(amount_spellings(amount_minor)))
        parameters["currency"] = random_case(draw, currency.value)
        expected |= {"amount_minor": amount_minor, "currency": currency}
    occurred_at = RECEIVED_AT
    if draw(st.booleans()):
        occurred_at = draw(
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=(RECEIVED_AT + timedelta(minutes=4)).replace(tzinfo=None),
                timezones=st.just(UTC),
            )
        )
        spelled = occurred_at.astimezone(draw(utc_offsets)).isoformat()
        parameters["time"] = spelled.replace("+00:00", "Z") if draw(st.booleans()) else spelled
    return ValidReport(
        parameters=parameters,
        expected=ConversionInput(
            click_id=click_id,
            type=conversion_type,
            received_at=RECEIVED_AT,
            occurred_at=occurred_at,
            **expected,
        ),
    )


@PROPERTY_SETTINGS
@given(report=valid_reports(), cache_buster=st.none() | st.integers(min_value=0))
def test_a_valid_report_round_trips_through_the_query_string(
    report: ValidReport, cache_buster: int | None
) -> None:
    parameters = dict(report.parameters)
    if cache_buster is not None:
        parameters["cb"] = str(cache_buster)
    query = urlencode(parameters).encode()

    outcome = read_and_parse(str(report.expected.click_id), query)

    assert outcome == report.expected


@PROPERTY_SETTINGS
@given(report=valid_reports())
def test_a_valid_report_round_trips_through_a_beacon_body(report: ValidReport) -> None:
    """sendBeacon's URLSearchParams: the same encoding, in the body instead of the URL."""
    outcome = read_and_parse(
        str(report.expected.click_id), b"", urlencode(report.parameters).encode()
    )
    assert outcome == report.expected


def test_reading_errors_and_validation_errors_are_named_together() -> None:
    outcome = read_and_parse("not-a-uuid", b"type=install&amount=%ff")
    assert isinstance(outcome, list)
    assert {error.field for error in outcome} == {"click_id", "amount"}


def test_the_round_trip_keeps_identifiers_exactly() -> None:
    click_id = uuid.uuid4()
    player_id = "Jörg + Müller & Co = 100% 🎰"
    outcome = read_and_parse(
        str(click_id), urlencode({"type": "install", "player_id": player_id}).encode()
    )
    assert isinstance(outcome, ConversionInput)
    assert outcome.player_id == player_id


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_at_the_edge_of_the_calendar_is_a_field_error(time: str) -> None:
    outcome = read_and_parse(
        str(uuid.uuid4()), urlencode({"type": "install", "time": time}).encode()
    )
    assert isinstance(outcome, list)
    assert {error.field for error in outcome} == {"time"}
