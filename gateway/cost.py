"""The cost of a GraphQL operation, computed on its document before anything runs.

An operation's cost is the number of fields it would resolve once every fragment is
expanded, with each paged field (one taking a `first` argument) multiplying the cost of
its selection by its page size, and expensive resolvers weighing more per item:

    cost(field) = 1 + page(field) * (per_item(field) + cost(selection))

`page(field)` is the field's `first` (literal, variable or schema default), else 1.
Fragments are costed once each and memoized, so computing the cost of
`query { ...F0 } fragment F0 on Query { ...F1 ...F1 ... }` (each level ten times the
last) is linear in the document's size while the cost it finds is the exponential one
execution would pay: the operation is refused before validation or execution start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLObjectType

PAGE_ARGUMENT = "first"

# Extra cost per returned item of resolvers that do more than read a row: each
# verification checks a signature, a Merkle proof and an on-chain root.
PER_ITEM_WEIGHTS: Mapping[str, int] = {
    "Query.passportVerification": 20,
    "PassportEntry.verification": 20,
}


class FragmentCycle(Exception):
    """A fragment spreads itself (directly or not); GraphQL forbids it."""

    def __init__(self, name: str) -> None:
        super().__init__(f'fragment "{name}" spreads itself')
        self.name = name


@dataclass
class _Costing:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    memo: dict[str, int]
    in_progress: set[str]

    def selection_cost(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment_cost(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_cost(selection.selection_set, on or parent)
        return total

    def fragment_cost(self, name: str) -> int:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None:
            return 0  # unknown fragment: validation reports it
        if name in self.in_progress:
            raise FragmentCycle(name)
        self.in_progress.add(name)
        on = self.schema.get_type(definition.type_condition.name.value)
        cost = self.selection_cost(definition.selection_set, on)
        self.in_progress.discard(name)
        self.memo[name] = cost
        return cost

    def field_cost(self, node: FieldNode, parent: Any) -> int:
        definition = _field(parent, node.name.value)
        if definition is None:
            # __typename, or a field validation will reject: one unit, nothing below.
            return 1 + self.selection_cost(node.selection_set, None)
        child: GraphQLNamedType = get_named_type(definition.type)
        page = self.page_size(node, definition)
        weight = PER_ITEM_WEIGHTS.get(f"{parent.name}.{node.name.value}", 0)
        return 1 + page * (weight + self.selection_cost(node.selection_set, child))

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        argument = definition.args.get(PAGE_ARGUMENT)
        if argument is None:
            return 1
        value: Any = argument.default_value
        for given in node.arguments or ():
            if given.name.value != PAGE_ARGUMENT:
                continue
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value, value)
        # A value that is no GraphQL Int (wrong type, past 32 bits) fails coercion later,
        # with BAD_USER_INPUT: cost it as a page of one so that error is the one reported.
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
            return 1
        return max(value, 1)


def _field(parent: Any, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation the request would run (0 when it names none: the
    executor reports that). Raises FragmentCycle for a self-spreading fragment."""
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.get_root_type(operation.operation)
    costing = _Costing(schema, fragments, variables or {}, {}, set())
    return costing.selection_cost(operation.selection_set, root)
