"""GraphQL operations with variables, for the fuzzer (tests/test_fuzz.py): for every root
field, `query($a: T!, ...) { field(a: $a, ...) { __typename } }`, and values for its
variables drawn from their types. hypothesis-graphql writes arguments inline; clients
send variables, and variable coercion is where the issue's masked errors were (a string
for `Int!`, 2^31, a bad enum value, a missing input field, a date out of range).

Typed values have the variables' shapes (so they reach the services' own validation:
text with NUL or at any length, integers at 32-bit edges, dates in and out of range);
wild values put any JSON value at any place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)
from hypothesis import strategies as st

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]

ANY_JSON: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    # NUL, controls, other planes: what a careless or hostile client may send.
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
INT32 = 2**31
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=300),
    st.sampled_from(["", "\x00", "a\x00b", " ", "https://keiko.example/a", "0x1"]),
)
INSTANTS = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 31)).map(
        lambda d: d.isoformat()  # no time zone
    ),
    st.sampled_from(["2020-13-45T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]),
)
SCALARS: dict[str, st.SearchStrategy[Json]] = {
    "Int": st.one_of(
        st.integers(-(2**31), INT32 - 1), st.sampled_from([0, -1, INT32 - 1, -(2**31), INT32])
    ),
    "Float": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -1.0, 1e308])
    ),
    "String": TEXT,
    "ID": TEXT,
    "Boolean": st.booleans(),
    "DateTime": INSTANTS,
    "JSON": ANY_JSON,
    "Upload": st.one_of(st.none(), TEXT),
}


def value_of(kind: GraphQLInputType, wild: bool) -> st.SearchStrategy[Json]:
    """Values of an input type; `wild`: any JSON value may stand anywhere instead."""
    typed = _typed(kind, wild)
    return st.one_of(typed, ANY_JSON) if wild else typed


def _typed(kind: GraphQLInputType, wild: bool) -> st.SearchStrategy[Json]:
    if isinstance(kind, GraphQLNonNull):
        return _shaped(kind.of_type, wild)
    return st.one_of(st.none(), _shaped(kind, wild))


def _shaped(kind: GraphQLInputType, wild: bool) -> st.SearchStrategy[Json]:
    inner: st.SearchStrategy[Json]
    if isinstance(kind, GraphQLList):
        inner = st.lists(value_of(kind.of_type, wild), max_size=3)
    elif isinstance(kind, GraphQLEnumType):
        inner = st.sampled_from(sorted(kind.values))
    elif isinstance(kind, GraphQLInputObjectType):
        required = {
            name: value_of(f.type, wild)
            for name, f in kind.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is None
        }
        optional = {
            name: value_of(f.type, wild) for name, f in kind.fields.items() if name not in required
        }
        inner = st.fixed_dictionaries(required, optional=optional)  # type: ignore[arg-type]
    elif isinstance(kind, GraphQLScalarType):
        inner = SCALARS.get(kind.name, TEXT)
    else:
        raise TypeError(f"not an input type: {kind}")
    return inner


@dataclass(frozen=True)
class Operation:
    """One root field called with a variable per argument."""

    document: str
    field: GraphQLField
    argument_variables: dict[str, str]  # argument name -> variable name


def operations(schema: GraphQLSchema, skip: frozenset[str] = frozenset()) -> list[Operation]:
    found: list[Operation] = []
    roots: list[tuple[str, GraphQLObjectType | None]] = [
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
    ]
    for keyword, root in roots:
        assert root is not None
        for name, field in sorted(root.fields.items()):
            if not field.args or name in skip:
                continue
            variables = {arg: f"v{i}" for i, arg in enumerate(field.args)}
            declared = ", ".join(f"${v}: {field.args[a].type}" for a, v in variables.items())
            passed = ", ".join(f"{a}: ${v}" for a, v in variables.items())
            selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
            document = f"{keyword}({declared}) {{ {name}({passed}){selection} }}"
            found.append(Operation(document, field, variables))
    return found


def requests_of(operation: Operation, wild: bool) -> st.SearchStrategy[dict[str, Json]]:
    """`{"query", "variables"}` bodies for `operation`."""
    variables = st.fixed_dictionaries(
        {
            variable: value_of(operation.field.args[argument].type, wild)
            for argument, variable in operation.argument_variables.items()
        }
    )
    return variables.map(lambda values: {"query": operation.document, "variables": values})
