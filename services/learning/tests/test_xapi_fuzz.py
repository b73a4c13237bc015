"""Fuzzing: whatever comes in, validation raises ValidationError or returns a statement whose
canonical bytes exist and which validates again to the same statement."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.kit.errors import ValidationError
from services.learning.tests import examples as ex
from services.learning.xapi import canonical_bytes, validate_statement, validate_statements

# KEIKO_FUZZ_EXAMPLES raises the budget for a long local run; no example database is written.
SETTINGS = settings(
    max_examples=int(os.environ.get("KEIKO_FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
statement_keys = st.sampled_from(
    [
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
        "objectType",
        "mbox",
        "member",
        "score",
        "contextActivities",
        "parent",
        "definition",
        "display",
        "en-US",
        "account",
    ]
)
statement_like = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(statement_keys, children, max_size=6)
    ),
    max_leaves=30,
)
EXAMPLES = [
    ex.SIMPLE,
    ex.LONG,
    ex.CHOICE_ANSWER,
    ex.SUBSTATEMENT,
    ex.VOIDING,
    ex.ATTACHMENT,
    ex.V2_CONTEXT_AGENTS,
]


Path = tuple[str | int, ...]


def _paths(value: Any, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(statement: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    out = ex.clone(statement)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    if value is ex.MISSING:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def _check(raw: Any, version: str) -> None:
    try:
        validated = validate_statement(raw, version=version)
    except ValidationError as exc:
        assert exc.field.startswith("statement")
        assert exc.reason
        return
    assert canonical_bytes(validated.statement)
    again = validate_statement(validated.statement, version=version)
    assert again.statement == validated.statement


@SETTINGS
@given(json_values, st.sampled_from(["1.0.3", "2.0.0"]))
def test_random_json_only_raises_validation_error(value: Any, version: str) -> None:
    _check(value, version)


@SETTINGS
@given(statement_like, st.sampled_from(["1.0.3", "2.0.0"]))
def test_statement_shaped_json_only_raises_validation_error(value: Any, version: str) -> None:
    _check(value, version)


@SETTINGS
@given(st.data(), st.sampled_from(["1.0.3", "2.0.0"]))
def test_mutated_examples_only_raise_validation_error(data: st.DataObject, version: str) -> None:
    base = data.draw(st.sampled_from(EXAMPLES))
    path = data.draw(st.sampled_from(_paths(base)))
    replacement = data.draw(json_values | st.just(ex.MISSING))
    _check(_replace(base, path, replacement), version)


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_random_text_only_raises_validation_error(text: str | bytes) -> None:
    _check(text, "1.0.3")


@SETTINGS
@given(st.lists(st.sampled_from(EXAMPLES) | json_values, max_size=4))
def test_batches_only_raise_validation_error(items: list[Any]) -> None:
    try:
        out = validate_statements(json.dumps(items, allow_nan=True))
    except ValidationError as exc:
        assert exc.field.startswith("statements")
        return
    for validated in out:
        canonical_bytes(validated.statement)


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    deep = "[" * 5000 + "]" * 5000
    try:
        validate_statement(deep)
    except ValidationError as exc:
        assert exc.field == "statement"
    nested: Any = {}
    for _ in range(200):
        nested = {"https://x.example/e": nested}
    try:
        validate_statement(ex.setting(ex.SIMPLE, "result", {"extensions": nested}))
    except ValidationError as exc:
        assert "nested deeper than 64 levels" in exc.reason
