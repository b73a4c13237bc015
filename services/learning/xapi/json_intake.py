"""JSON intake for xAPI: strict parsing (no NaN/Infinity, no duplicate members, UTF-8)
and deep conversion into the plain JSON values RFC 8785 canonicalization can always
encode; the helpers every validator module fails with."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast

from services.kit.errors import ValidationError

JSON = Any
JsonObject = dict[str, Any]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_json(text: str | bytes, path: str) -> JSON:
    """Parse JSON text strictly: no NaN/Infinity, no duplicate keys, UTF-8 only."""

    def pairs(items: list[tuple[str, Any]]) -> JsonObject:
        out: JsonObject = {}
        for key, value in items:
            if key in out:
                raise ValueError(f'duplicate property "{key}"')
            out[key] = value
        return out

    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            path, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise ValidationError(path, "is not valid UTF-8") from None
    except RecursionError:
        raise ValidationError(path, f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ValidationError(path, f"is not valid JSON: {exc}") from None


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def to_json(value: object, path: str, depth: int = 0) -> JSON:
    """Deep-copy `value` into plain JSON types, rejecting anything RFC 8785 cannot encode."""
    if depth > MAX_DEPTH:
        raise ValidationError(path, f"is nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is str:
        if _has_lone_surrogate(cast(str, value)):
            raise ValidationError(path, "string contains an unpaired UTF-16 surrogate")
        return value
    if kind is dict or isinstance(value, Mapping):
        out: JsonObject = {}
        mapping = cast(Mapping[object, object], value)
        for key, item in mapping.items():
            if type(key) is not str:
                raise ValidationError(path, f"object keys must be strings, got {json_type(key)}")
            if _has_lone_surrogate(key):
                raise ValidationError(path, "property name contains an unpaired UTF-16 surrogate")
            out[key] = to_json(item, f"{path}.{key}", depth + 1)
        return out
    if kind is list or kind is tuple:
        items = cast(Sequence[object], value)
        return [to_json(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    if value is None or kind is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValidationError(path, "integer is outside the I-JSON range of +/-(2**53-1)")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "number must be finite (NaN and Infinity are not JSON)")
        return float(value)
    if isinstance(value, str):
        return to_json(str(value), path, depth)
    if isinstance(value, list | tuple):
        return to_json(list(value), path, depth)
    raise ValidationError(path, f"is not a JSON value ({type(value).__name__})")


def show(value: object, limit: int = 80) -> str:
    """A value quoted for an error reason, truncated so a huge input cannot bloat errors."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)
