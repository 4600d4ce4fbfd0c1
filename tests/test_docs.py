"""Docs that run: every GraphQL example in README.md and docs/*.md works as written.

How blocks are found: every fenced block of README.md and docs/*.md is read with its
info string (the label after the opening fence) and the line of its opening fence.

- A ```graphql block must be an executable document (operations and fragments, at
  least one operation) that validates, with graphql-core's `validate`, against the
  SDL `conversions graphql-schema` prints (`python -m api.cli graphql-schema`, run from
  this checkout). Shorthand that is not a document belongs under another label:
  ```graphql-sdl for excerpts of type definitions, ```text for anything else.
- A ```graphql-sdl block must be SDL that is part of the printed schema: each type it
  shows exists with that kind, and each field, argument, input field, enum value and
  union member it shows exists there with the same type (and default, where one is
  written). Excerpts may leave things out.
- Every ```graphql block is also executed, on the engine DATABASE_URL names, against
  a store seeded by `_seed` (an offer, a partner with a tracking link to it and a read
  key of its own, a postback rule of that partner, a click through the link and a
  deposit on that click, with its delivery): through
  gql's client built from the printed SDL (no introspection: gql validates each
  document locally, then posts it to /graphql with an admin key). Each operation of
  a block runs, in document order; its variables come from `_seed`'s sample values,
  by name (`$clickId`, `$conversionId`, `$offerId`, `$trackingLinkId`, `$partnerId`,
  `$apiKeyId`, `$playerId`, `$transactionId`, `$input`; an optional variable without
  a sample is left out). A block runs when no answer has GraphQL
  `errors` (a typed result such as ValidationErrors is an answer), no root field
  answers null and no connection comes back without edges: an example shows data.

Which blocks are executed: every ```graphql block, with no exceptions; the
```graphql-sdl excerpts are only checked against the printed SDL, and other labels
(```text, ```json, ```sh, ...) are not read. An excerpt that differs from the printed
schema fails: docs show the schema as `conversions graphql-schema` prints it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    OperationDefinitionNode,
    ScalarTypeDefinitionNode,
    Source,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    build_schema,
    parse,
    print_ast,
    validate,
)
from litestar import Litestar
from piccolo.engine.base import Engine

from models.clicks.service import NewClick, create_click
from models.keys import Scope, create_api_key
from models.partners.access import EVERYTHING
from models.partners.partners import create_partner
from models.postbacks.rules import create_rule
from models.store.tables import FireRejection, PostbackEvent
from models.tracking.links import create_tracking_link
from models.tracking.offers import create_offer
from tests.graphql_client import issue_key, seed_conversion

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXECUTABLE = "graphql"
SDL_EXCERPT = "graphql-sdl"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # the opening fence's line, counting from 1
    label: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def document_line(self, line: int) -> int:
        """The file's line of a line of the block's text (both counting from 1)."""
        return self.line + line


OPENING_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def fenced_blocks(path: Path) -> Iterator[Block]:
    """Fenced code blocks as CommonMark reads them (fences of ``` or ~~~)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = OPENING_FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        label = (opening["info"].split() or [""])[0].lower()
        start, body = index, []
        while index < len(lines):
            stripped = lines[index].strip()
            if (
                len(lines[index]) - len(lines[index].lstrip(" ")) <= 3
                and stripped.startswith(fence)
                and set(stripped) == {fence[0]}
            ):
                break
            line = lines[index]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            index += 1
        else:
            raise AssertionError(f"{path.relative_to(REPO)}:{start}: the fence is never closed")
        index += 1
        yield Block(path, start, label, "\n".join(body) + "\n")


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in fenced_blocks(path)]


def blocks_labelled(label: str) -> list[Any]:
    return [pytest.param(block, id=block.where) for block in all_blocks() if block.label == label]


@cache
def printed_sdl() -> str:
    """What `conversions graphql-schema` prints, run from this checkout."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    printed = subprocess.run(
        [sys.executable, "-m", "api.cli", "graphql-schema"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert printed.returncode == 0, f"conversions graphql-schema failed:\n{printed.stderr}"
    return printed.stdout


@cache
def printed_schema() -> GraphQLSchema:
    return build_schema(printed_sdl())


def _located(block: Block, error: GraphQLError) -> str:
    line = (
        f"{block.path.relative_to(REPO)}:{block.document_line(error.locations[0].line)}: "
        if error.locations
        else ""
    )
    return f"{line}{error.message}"


def _parse(block: Block) -> DocumentNode | list[str]:
    """The block's document, or why it is not GraphQL at all."""
    try:
        return parse(Source(block.text, block.where))
    except GraphQLError as error:
        return [_located(block, error)]


def _report(block: Block, problem: str, details: list[str], hint: str) -> str:
    return f"{block.where}: {problem}:\n  " + "\n  ".join(details) + f"\n({hint})"


# --- the blocks are found ---------------------------------------------------------------


def test_the_docs_have_graphql_examples_and_excerpts() -> None:
    labels = [block.label for block in all_blocks()]
    assert labels.count(EXECUTABLE) >= 10, labels
    assert labels.count(SDL_EXCERPT) >= 3, labels


def test_fences_are_read_with_their_labels_and_lines(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(
        "text\n```GraphQL\n{ a }\n```\n\n~~~~ graphql-sdl extra\nscalar X\n```\n~~~~\n"
        "  ```\n  indented\n  ```\n"
    )
    blocks = [(block.line, block.label, block.text) for block in fenced_blocks(sample)]
    assert blocks == [
        (2, "graphql", "{ a }\n"),
        (6, "graphql-sdl", "scalar X\n```\n"),
        (10, "", "indented\n"),
    ]


# --- ```graphql: executable documents, valid against the printed schema ----------------


def executable_problems(block: Block) -> list[str]:
    """Why the block is not an executable document valid against the printed schema."""
    document = _parse(block)
    if isinstance(document, list):
        return document
    problems = [_located(block, error) for error in validate(printed_schema(), document)]
    if not any(isinstance(node, OperationDefinitionNode) for node in document.definitions):
        problems.append("the block has no operation to run")
    return problems


@pytest.mark.parametrize("block", blocks_labelled(EXECUTABLE))
def test_a_graphql_block_is_a_valid_executable_document(block: Block) -> None:
    problems = executable_problems(block)
    if problems:
        pytest.fail(
            _report(
                block,
                "a ```graphql block that is not an executable document valid against the "
                "schema `conversions graphql-schema` prints",
                problems,
                "type excerpts belong in a ```graphql-sdl block, other shorthand in ```text",
            )
        )


@pytest.mark.parametrize(
    "text",
    [
        "type Click { id: UUID! }\n",  # SDL
        "click(id: UUID!): Click\n",  # a signature
        "{ clicks { edges { node { s1 } } } }\n",  # a field Click does not have
        "fragment f on Click { id }\n",  # nothing to run
        "mutation { createOffer(input: {}) { id } }\nmutation { offers { totalCount } }\n",
    ],
)
def test_shorthand_in_a_graphql_block_fails(text: str) -> None:
    assert executable_problems(Block(REPO / "docs" / "example.md", 10, EXECUTABLE, text))


# --- ```graphql-sdl: excerpts of the printed schema ------------------------------------


def _signature(node: FieldDefinitionNode | InputValueDefinitionNode) -> str:
    return print_ast(node.type)


def _input_value_mismatches(
    where: str,
    shown: tuple[InputValueDefinitionNode, ...],
    printed: tuple[InputValueDefinitionNode, ...],
) -> Iterator[str]:
    """Arguments or input fields shown with another type or default than printed."""
    by_name = {value.name.value: value for value in printed}
    for value in shown:
        twin = by_name.get(value.name.value)
        if twin is None:
            yield f"{where}.{value.name.value} is not in the printed schema"
            continue
        if _signature(value) != _signature(twin):
            yield (
                f"{where}.{value.name.value} is {_signature(value)} in the docs, "
                f"{_signature(twin)} in the printed schema"
            )
        if value.default_value is not None and (
            twin.default_value is None
            or print_ast(value.default_value) != print_ast(twin.default_value)
        ):
            yield (
                f"{where}.{value.name.value} defaults to {print_ast(value.default_value)} in "
                "the docs, not in the printed schema"
            )


def _field_mismatches(
    definition: ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode,
    twin: ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode,
) -> Iterator[str]:
    """Fields (and their arguments) shown otherwise than printed."""
    name = definition.name.value
    printed = {field.name.value: field for field in twin.fields or ()}
    for field in definition.fields or ():
        where = f"{name}.{field.name.value}"
        printed_field = printed.get(field.name.value)
        if printed_field is None:
            yield f"{where} is not in the printed schema"
            continue
        if _signature(field) != _signature(printed_field):
            yield (
                f"{where} is {_signature(field)} in the docs, "
                f"{_signature(printed_field)} in the printed schema"
            )
        yield from _input_value_mismatches(
            where, field.arguments or (), printed_field.arguments or ()
        )


def excerpt_mismatches(block: Block) -> list[str]:
    """What an SDL excerpt says that the printed schema does not."""
    excerpt = _parse(block)
    if isinstance(excerpt, list):
        return excerpt
    printed = {
        definition.name.value: definition
        for definition in parse(printed_sdl()).definitions
        if isinstance(definition, TypeDefinitionNode)
    }
    mismatches: list[str] = []
    for definition in excerpt.definitions:
        if not isinstance(definition, TypeDefinitionNode):
            mismatches.append(f"not a type definition: {print_ast(definition)[:60]!r}")
            continue
        name = definition.name.value
        twin = printed.get(name)
        if twin is None:
            mismatches.append(f"type {name} is not in the printed schema")
        elif type(twin) is not type(definition):
            mismatches.append(f"{name} is a {twin.kind} in the printed schema")
        elif isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            assert isinstance(twin, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode)
            mismatches += _field_mismatches(definition, twin)
        elif isinstance(definition, InputObjectTypeDefinitionNode):
            assert isinstance(twin, InputObjectTypeDefinitionNode)
            mismatches += _input_value_mismatches(name, definition.fields or (), twin.fields or ())
        elif isinstance(definition, EnumTypeDefinitionNode):
            assert isinstance(twin, EnumTypeDefinitionNode)
            values = {value.name.value for value in twin.values or ()}
            mismatches += [
                f"{name}.{value.name.value} is not in the printed schema"
                for value in definition.values or ()
                if value.name.value not in values
            ]
        elif isinstance(definition, UnionTypeDefinitionNode):
            assert isinstance(twin, UnionTypeDefinitionNode)
            members = {member.name.value for member in twin.types or ()}
            mismatches += [
                f"{member.name.value} is not a member of {name}"
                for member in definition.types or ()
                if member.name.value not in members
            ]
        elif not isinstance(definition, ScalarTypeDefinitionNode):
            mismatches.append(f"{name}: excerpts of a {definition.kind} are not checked")
    return mismatches


@pytest.mark.parametrize("block", blocks_labelled(SDL_EXCERPT))
def test_a_graphql_sdl_block_is_part_of_the_printed_schema(block: Block) -> None:
    mismatches = excerpt_mismatches(block)
    if mismatches:
        pytest.fail(
            _report(
                block,
                "a ```graphql-sdl excerpt that the printed schema contradicts",
                mismatches,
                "excerpts may leave things out, never differ",
            )
        )


@pytest.mark.parametrize(
    "text",
    [
        "type Click { id: UUID!  s1: String }\n",  # a field Click does not have
        "input ClickFilter { stage: String }\n",  # a field shown with another type
        "enum Stage { NONE LOST }\n",  # a value Stage does not have
        "union RecordConversionResult = ConversionRecorded | Other\n",  # not a member
        "type Query { offers(first: Int = 10): OfferConnection! }\n",  # another default
        "type Offer { id: UUID!  ownerId: UUID! }\n",  # a field Offer does not have
        "type Nowhere { id: UUID! }\n",  # a type the schema does not have
        "input Offer { id: UUID! }\n",  # a type of another kind
    ],
)
def test_an_excerpt_that_differs_from_the_printed_schema_fails(text: str) -> None:
    block = Block(REPO / "docs" / "example.md", 10, SDL_EXCERPT, text)
    assert len(excerpt_mismatches(block)) == 1, excerpt_mismatches(block)
    with pytest.raises(pytest.fail.Exception, match="the printed schema contradicts"):
        test_a_graphql_sdl_block_is_part_of_the_printed_schema(block)


# --- ```graphql: every example runs against the app, on this engine ---------------------


async def _seed() -> dict[str, Any]:
    """An offer, a partner's link to it and the partner's key, a postback rule of the
    partner, a click through the link with a deposit (and its delivery): sample
    variables."""
    offer = await create_offer("Welcome bonus", "https://casino.example/welcome?lang=en")
    partner = await create_partner("partner-42")
    link = await create_tracking_link(offer.id, partner.id, "banner-300x250")
    partner_key = await create_api_key("partner-42 dashboard", Scope.READ, partner.id)
    click_id = await create_click(
        NewClick(
            tracking_link_id=link.id,
            type="ppc",
            s1="campaign-7",
            s2="adgroup-3",
            country="DE",
            player_id="p-77",
            created_at=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    # Before the deposit, so that the deposit has its delivery in the outbox.
    await create_rule(
        EVERYTHING,
        partner_id=partner.id,
        offer_id=None,
        events=[PostbackEvent.FIRST_DEPOSIT, PostbackEvent.DEPOSIT],
        url_template="https://track.partner-42.example/pb?cid={click_id}&event={event}",
        allow_private_networks=False,
    )
    conversion_id = await seed_conversion(
        click_id,
        "deposit",
        amount="40.00",
        currency="eur",
        transaction_id="order-1842",
        player_id="p-77",
    )
    # A fire the pixel refused (the deposit again, another amount): what fireRejections
    # shows, as the pixel logs it.
    await FireRejection(
        at=datetime.now(UTC),
        status=409,
        errors='[{"field": "transaction_id", "code": "conflict", "message": "..."}]',
        click_id=click_id,
        offer=offer.id,
        partner=partner.id,
        query="type=deposit&amount=45.00&currency=eur&transaction_id=order-1842",
        ip="203.0.113.7",
    ).save()
    return {
        "offerId": str(offer.id),
        "trackingLinkId": str(link.id),
        "partnerId": str(partner.id),
        "apiKeyId": str(partner_key.id),
        "clickId": str(click_id),
        "conversionId": str(conversion_id),
        "playerId": "p-77",
        "transactionId": "order-1842",
        # The seeded deposit reported again: the retry the docs describe.
        "input": {
            "clickId": str(click_id),
            "type": "DEPOSIT",
            "playerId": "p-77",
            "transactionId": "order-1842",
            "amount": "40.00",
            "currency": "EUR",
        },
    }


def _variables(
    block: Block, operation: OperationDefinitionNode, samples: dict[str, Any]
) -> dict[str, Any]:
    """A sample value for every variable the operation declares; optional ones may go without."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in samples:
            values[name] = samples[name]
        elif isinstance(definition.type, NonNullTypeNode) and definition.default_value is None:
            pytest.fail(
                f"{block.where}: no sample value for the required variable ${name}: "
                "add one to _seed in tests/test_docs.py"
            )
    return values


def _empty_parts(value: Any, path: str = "") -> Iterator[str]:
    """Root fields that answered null and connections without edges: examples show data."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if item is None and not path:
                yield f"{where} is null"
            elif key == "edges" and item == []:
                yield f"{where} is empty"
            else:
                yield from _empty_parts(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _empty_parts(item, f"{path}[{index}]")


def _client(app: Litestar, secret: str) -> Client:
    """gql's client, validating against the printed SDL: no introspection."""
    return Client(
        schema=printed_sdl(),
        transport=HTTPXAsyncTransport(
            url="http://testserver/graphql",
            transport=httpx.ASGITransport(app=app),
            headers={"Authorization": f"Bearer {secret}"},
        ),
    )


@pytest.mark.parametrize("block", blocks_labelled(EXECUTABLE))
async def test_a_graphql_block_runs(block: Block, db: Engine, app: Litestar) -> None:
    document = _parse(block)
    assert not isinstance(document, list), document
    samples = await _seed()
    operations = [
        node for node in document.definitions if isinstance(node, OperationDefinitionNode)
    ]
    assert operations, f"{block.where}: no operation to run"
    async with _client(app, await issue_key(Scope.ADMIN)) as session:
        for operation in operations:
            name = operation.name.value if operation.name else "(anonymous)"
            request = GraphQLRequest(
                document,
                variable_values=_variables(block, operation, samples),
                operation_name=operation.name.value if operation.name else None,
            )
            try:
                result = await session.execute(request, get_execution_result=True)
            except TransportQueryError as error:
                pytest.fail(f"{block.where}: operation {name} answered errors: {error.errors}")
            assert result.data, f"{block.where}: operation {name} answered no data"
            empty = list(_empty_parts(result.data))
            assert not empty, (
                f"{block.where}: operation {name} answered nothing to show: {empty}"
                " (does _seed store what the example looks for?)"
            )
