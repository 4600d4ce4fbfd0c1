"""Relay-style connections for every list: one `Connection[T]`, one `Edge[T]`, one
`PageInfo`, one way to read `first` and `after`.

A GraphQL object type is built on its record (`class Conversion(ConversionRecord)`)
and registered with `@node_of`, so a connection can turn any page of records into
nodes without its module importing the type's: the cycles between clicks,
conversions and tracking links stay out of the imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Generic, Protocol, TypeVar

import strawberry

from models.errors import InvalidInputError
from models.paging import Cursor, InvalidCursorError, Page, Paged
from models.partners.access import Access
from schema.context import GraphQLContext, GraphQLLimits
from schema.errors import bad_user_input

NodeT = TypeVar("NodeT")
PagedT = TypeVar("PagedT", bound=Paged)
TypeT = TypeVar("TypeT", bound=type)

_node_types: dict[type, type] = {}


def node_of(record_type: type) -> Callable[[TypeT], TypeT]:
    """Register a GraphQL type as the one that shows `record_type`'s records."""

    def register(graphql_type: TypeT) -> TypeT:
        _node_types[record_type] = graphql_type
        return graphql_type

    return register


def node(record: Any) -> Any:
    """The GraphQL object showing `record`: its registered type, with the same fields."""
    graphql_type = _node_types[type(record)]
    return graphql_type(
        **{field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    )


class Listing(Protocol[PagedT]):
    """What a feature's reads offer a list (models/store/reads.py's TableReads)."""

    cursor_kind: str

    async def page(
        self, access: Access, conditions: Sequence[Any], first: int, after: Cursor | None = None
    ) -> Page[PagedT]: ...

    async def count(self, access: Access, conditions: Sequence[Any] = ()) -> int: ...


class Filter(Protocol):
    """A list's filter input (models' ConversionFilter, ClickFilter)."""

    def conditions(self) -> list[Any]: ...


def conditions_of(filter: Filter | None) -> list[Any]:
    """A filter's conditions; a value no query can take is the client's error."""
    if filter is None:
        return []
    try:
        return filter.conditions()
    except InvalidInputError as invalid:
        raise bad_user_input("invalid filter", invalid.errors) from invalid


def node_or_none(record: Any) -> Any:
    """A loader's answer as a node: None stays None (the id names nothing)."""
    return None if record is None else node(record)


First = Annotated[
    int | None,
    strawberry.argument(description="Page size: 50 unless given, at most the configured cap."),
]
After = Annotated[
    str | None, strawberry.argument(description="The endCursor of the previous page.")
]


def page_size(first: int | None, limits: GraphQLLimits) -> int:
    if first is None:
        return limits.default_first
    if not 0 <= first <= limits.max_page_size:
        raise bad_user_input(f"first must be between 0 and {limits.max_page_size}")
    return first


def decode_cursor(after: str | None, kind: str) -> Cursor | None:
    if after is None:
        return None
    try:
        return Cursor.decode(after, kind)
    except InvalidCursorError as error:
        raise bad_user_input(str(error)) from error


@strawberry.type(description="Where a page ends. Pages run newest first.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    # Paging runs forwards only; Relay clients still expect these two fields.
    start_cursor: str | None
    has_previous_page: bool = strawberry.field(
        default=False, description="Always false: pages run forwards with `first` and `after`."
    )


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page, newest first.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many match, on every page together.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    async def listing(
        cls,
        reads: Listing[PagedT],
        conditions: Sequence[Any],
        first: int | None,
        after: str | None,
        context: GraphQLContext,
    ) -> Connection[Any]:
        """A root list: the page `first` and `after` ask for, of the rows `conditions`
        match within the request's access."""
        access = context.access
        page = await reads.page(
            access,
            conditions,
            page_size(first, context.limits),
            decode_cursor(after, reads.cursor_kind),
        )
        return cls.of(page, lambda: reads.count(access, conditions))

    @classmethod
    def of(cls, page: Page[PagedT], count: Callable[[], Awaitable[int]]) -> Connection[Any]:
        """A page of records as a connection; `count` runs only if totalCount is asked."""
        edges: list[Edge[Any]] = [
            Edge(cursor=record.cursor.encode(record.CURSOR_KIND), node=node(record))
            for record in page.rows
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
                start_cursor=edges[0].cursor if edges else None,
            ),
            count=count,
        )
