"""The schema's names are a contract with clients, and docs/schema.graphql publishes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schema.root import schema

PUBLISHED = Path(__file__).parent.parent / "docs" / "schema.graphql"
REGENERATE = "regenerate it: .venv/bin/conversions graphql-schema > docs/schema.graphql"


def test_the_published_sdl_is_the_schema() -> None:
    assert PUBLISHED.read_text() == schema.as_str() + "\n", REGENERATE


def test_the_cli_prints_the_sdl() -> None:
    printed = subprocess.run(
        [str(Path(sys.executable).with_name("conversions")), "graphql-schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert printed.stdout == schema.as_str() + "\n"


@pytest.mark.parametrize(
    "contract",
    [
        "enum ConversionType {\n  INSTALL\n  REGISTRATION\n  DEPOSIT\n}",
        "enum Currency {\n  EUR\n  USD\n  GBP\n}",
        "enum Stage {\n  NONE\n  INSTALL\n  REGISTRATION\n  DEPOSIT\n}",
        "union RecordConversionResult = ConversionRecorded | DuplicateConversion"
        " | ConversionConflict | ClickNotFound | ValidationErrors",
        "click(id: UUID!): Click",
        "conversion(id: UUID!): Conversion",
        "recordConversion(input: RecordConversionInput!): RecordConversionResult!",
        "createClick(input: CreateClickInput!): Click!",
        "amount: Decimal",
        "totalCount: Int!",
    ],
)
def test_the_names_clients_code_against(contract: str) -> None:
    assert contract in schema.as_str()


@pytest.mark.parametrize(
    ("type_name", "fields"),
    [
        (
            "Conversion",
            "id type occurredAt receivedAt playerId transactionId currency amount"
            " isFirstDeposit source ip userAgent referrer country click",
        ),
        ("Click", "id createdAt stage playerId ip userAgent referrer country conversions"),
        (
            "ConversionFilter",
            "clickId playerId transactionId type currency occurredFrom occurredTo",
        ),
        ("ClickFilter", "playerId stage createdFrom createdTo"),
        (
            "RecordConversionInput",
            "clickId type playerId transactionId currency amount occurredAt test",
        ),
        ("PageInfo", "hasNextPage endCursor"),
        ("FieldError", "field code message"),
    ],
)
def test_every_field_the_issue_names(type_name: str, fields: str) -> None:
    definition = schema.get_type_by_name(type_name)
    assert definition is not None
    names = {
        field.graphql_name or schema.config.name_converter.get_graphql_name(field)
        for field in definition.fields
    }
    assert set(fields.split()) <= names
