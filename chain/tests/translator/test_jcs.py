"""The fast RFC 8785 path (orjson) gives the reference's (rfc8785) bytes and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.translator.signing import canonical_bytes, parse_canonical
from services.kit import jcs
from services.kit.errors import ValidationError

# Text from the whole of Unicode, lone surrogates and control characters included, with
# characters above U+FFFF and in U+E000-U+FFFF (where UTF-16 and UTF-8 orders differ).
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
        st.characters(min_codepoint=0x10000),
        st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f\u2028'),
    ),
    max_size=8,
)
_INTS = st.one_of(
    st.integers(min_value=-(2**53) - 2, max_value=2**53 + 2),
    st.integers(min_value=-(2**70), max_value=2**70),
)
_FLOATS = st.one_of(
    st.floats(),
    st.floats(min_value=1e-6, max_value=1e16),
    st.floats(min_value=-1e16, max_value=-1e-6),
    st.sampled_from([0.0, -0.0, 1.0, 1e-5, 1e15, 1e21, 5e-324, 0.1, 0.8, 1 / 3]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(_TEXT, st.sampled_from(["id", "a", "B", "é"])), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _reference(value: Any) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:  # the reference's error is what the fast path must raise too
        return type(exc)


def _fast(value: Any) -> bytes | type[BaseException]:
    try:
        return jcs.dumps(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=400)
@given(_JSON)
def test_same_bytes_or_same_error_as_rfc8785(value: Any) -> None:
    assert _fast(value) == _reference(value)


def _reference_check(raw: bytes) -> bytes | str:
    """The check of canonical bytes before the fast path: json, then rfc8785."""
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "not UTF-8 JSON"
    if not isinstance(parsed, dict):
        return "must be a JSON object"
    try:
        canonical = rfc8785.dumps(parsed)
    except rfc8785.IntegerDomainError:
        return "I-JSON range"
    except rfc8785.FloatDomainError:
        return "NaN and infinities"
    except Exception:
        return "not serializable"
    return raw if canonical == raw else "not RFC 8785 canonical"


def _check(raw: bytes) -> bytes | str:
    try:
        return parse_canonical(raw, "statement")[0]
    except ValidationError as exc:
        return next(
            reason
            for reason in (
                "not UTF-8 JSON",
                "must be a JSON object",
                "I-JSON range",
                "NaN and infinities",
                "not serializable",
                "not RFC 8785 canonical",
            )
            if reason in str(exc)
        )


@settings(max_examples=200)
@given(st.dictionaries(_TEXT, _JSON, max_size=4))
def test_canonical_bytes_are_checked_as_before(value: Any) -> None:
    expected = _reference(value)
    if not isinstance(expected, bytes):
        with pytest.raises(ValidationError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected
    for raw in (expected, expected.replace(b":", b": ", 1), expected.replace(b"1", b"1.0", 1)):
        assert _check(raw) == _reference_check(raw)


@settings(max_examples=200)
@given(st.binary(max_size=40) | st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace")))
def test_any_bytes_are_checked_as_before(raw: bytes) -> None:
    assert _check(raw) == _reference_check(raw)


def test_a_statement_takes_the_fast_path() -> None:
    statement: dict[str, Any] = {
        "id": "00000000-0000-4000-8000-000000000001",
        "actor": {"account": {"homePage": "https://keiko.example", "name": "learner-1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en": "é"}},
        "result": {"score": {"scaled": 0.8, "raw": 8}, "success": True},
        "context": {"extensions": {"https://keiko.example/x": [None, "a\nb"]}},
    }
    assert jcs.orjson_is_canonical(statement)
    assert jcs.dumps(statement) == rfc8785.dumps(statement)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order: the emoji's surrogates first
        {"n": 1.0},  # ECMAScript prints 1
        {"n": 1e21},  # ECMAScript prints 1e+21
        {"n": 1e-7},
        {"n": 2**53},  # outside I-JSON: rfc8785 refuses it
        {"n": float("nan")},
        {1: "non-string key"},
    ],
)
def test_what_orjson_would_print_differently_goes_to_the_reference(value: Any) -> None:
    assert not jcs.orjson_is_canonical(value)
    assert _fast(value) == _reference(value)


def test_a_lone_surrogate_is_refused_by_both() -> None:
    # orjson raises on it; the reference then refuses it with its own error.
    assert _fast({"s": "\ud800"}) == _reference({"s": "\ud800"}) == rfc8785.CanonicalizationError


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"n":9007199254740993}', "I-JSON range"),
        (b'{"n":NaN}', "NaN"),
        (b'{"a":1,"a":1}', "not RFC 8785 canonical"),
        (b"\xff", "not UTF-8 JSON"),
        (b"[1]", "must be a JSON object"),
    ],
)
def test_bytes_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        parse_canonical(raw, "statement")
