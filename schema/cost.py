"""What an operation may cost before any of it runs: the nodes its pages can return.

Depth, aliases, tokens and page size are each bounded, but they multiply: a page of
500 conversions whose clicks each list 500 conversions is 250,000 nodes, and thirty
aliases of it are 7.5 million. So a page's size (`first`, or the default when absent)
multiplies everything selected inside it, and the costs of sibling fields, aliases
and fragments add up. A field is a page when it takes `first`; other fields cost
nothing themselves but pass their children's cost on.

The cost is computed from the document and the variables alone, once the document is
valid: nothing is resolved and the store is not asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
)
from graphql.utilities import get_operation_ast

from schema.context import GraphQLLimits

PAGE_SIZE_ARGUMENT = "first"


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: GraphQLLimits,
) -> int:
    """The most nodes the operation's pages can return. A document naming no operation
    to run costs 0: execution refuses it before any resolver."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    defaults = {
        definition.variable.name.value: definition.default_value
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    return _Costing(schema, document, variables or {}, defaults, limits).of_selections(
        operation.selection_set, root
    )


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        defaults: Mapping[str, ValueNode],
        limits: GraphQLLimits,
    ) -> None:
        self.schema = schema
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.variables = variables
        self.defaults = defaults
        self.limits = limits
        # A fragment spread many times (or spreading others many times) is costed once:
        # costs scale linearly, so a fragment's cost per enclosing node is all it takes.
        self.fragment_costs: dict[str, int] = {}

    def of_selections(self, selections: SelectionSetNode, parent: GraphQLNamedType) -> int:
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.of_field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.named_type(condition.name.value) if condition else parent
                total += self.of_selections(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.of_fragment(selection.name.value)
        return total

    def of_field(self, node: FieldNode, parent: GraphQLNamedType) -> int:
        fields = (
            parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
        )
        definition = fields.get(node.name.value)
        if definition is None:
            # `__typename` and introspection: no pages.
            return 0
        inner = 0
        if node.selection_set is not None:
            inner = self.of_selections(node.selection_set, get_named_type(definition.type))
        if PAGE_SIZE_ARGUMENT not in definition.args:
            return inner
        size = self.page_size(node)
        return size * (1 + inner)

    def of_fragment(self, name: str) -> int:
        if name not in self.fragment_costs:
            fragment = self.fragments[name]
            condition = self.named_type(fragment.type_condition.name.value)
            self.fragment_costs[name] = self.of_selections(fragment.selection_set, condition)
        return self.fragment_costs[name]

    def named_type(self, name: str) -> GraphQLNamedType:
        named = self.schema.get_type(name)
        assert named is not None  # the document is valid: every type it names exists
        return named

    def page_size(self, node: FieldNode) -> int:
        given = next(
            (
                self.value(argument.value)
                for argument in node.arguments or ()
                if argument.name.value == PAGE_SIZE_ARGUMENT
            ),
            None,
        )
        if given is None:
            return self.limits.default_first
        if not isinstance(given, int) or isinstance(given, bool):
            # No Int: coercing it fails before anything runs. Count the worst case.
            return self.limits.max_page_size
        # Outside 0..max the field refuses it; within, it is the page's size.
        return min(max(given, 0), self.limits.max_page_size)

    def value(self, node: ValueNode) -> object:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return self.variables[name]
            default = self.defaults.get(name)
            return None if default is None else self.value(default)
        if isinstance(node, IntValueNode):
            return int(node.value)
        # The document is valid, so the only other literal an Int takes is null.
        return None
