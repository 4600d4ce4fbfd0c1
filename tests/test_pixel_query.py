"""The pixel's raw query-string reader: what frameworks forgive, it refuses."""

from __future__ import annotations

from pixel.query import read_parameters


def codes(errors) -> dict[str | None, str]:
    return {error.field: error.code for error in errors}


def test_decodes_percent_escapes_and_plus() -> None:
    values, errors = read_parameters(b"type=deposit&player_id=J%C3%B6rg+M%C3%BCller&amount=10.5")
    assert errors == []
    assert values == {"type": "deposit", "player_id": "Jörg Müller", "amount": "10.5"}


def test_ignores_parameters_that_do_not_matter() -> None:
    values, errors = read_parameters(b"type=install&cb=123&method=postback&type2=x&&=&junk")
    assert errors == []
    assert values == {"type": "install"}


def test_a_parameter_that_matters_given_twice_is_an_error() -> None:
    values, errors = read_parameters(b"type=install&type=deposit&amount=1")
    assert codes(errors) == {"type": "repeated"}
    assert values == {"amount": "1"}


def test_ignored_parameters_may_repeat() -> None:
    _, errors = read_parameters(b"type=install&cb=1&cb=2")
    assert errors == []


def test_repeats_across_query_string_and_body_are_errors() -> None:
    _, errors = read_parameters(b"type=install", b"type=install")
    assert codes(errors) == {"type": "repeated"}


def test_invalid_utf8_names_the_parameter_that_carried_it() -> None:
    values, errors = read_parameters(b"type=install&player_id=%ff%fe&transaction_id=%C3%28")
    assert codes(errors) == {"player_id": "invalid_utf8", "transaction_id": "invalid_utf8"}
    assert values == {"type": "install"}


def test_nul_bytes_survive_decoding_for_the_validator_to_refuse() -> None:
    values, _ = read_parameters(b"player_id=a%00b")
    assert values == {"player_id": "a\x00b"}


def test_body_and_query_string_combine() -> None:
    values, errors = read_parameters(b"type=deposit", b"amount=5&currency=eur")
    assert errors == []
    assert values == {"type": "deposit", "amount": "5", "currency": "eur"}
