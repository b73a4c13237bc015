"""Statement comparison, for an LRS receiving a statement whose id it already stores.

xAPI: a statement PUT/POSTed again with an existing id is accepted (no-op) when it is the
same statement, and rejected with 409 Conflict otherwise. "The same" ignores what the LRS
may have set or reformatted: `authority`, `stored`, `version`; the order of Group members;
the case of UUIDs; the timezone and sub-millisecond precision of timestamps; a
`timestamp` present on one side only (the LRS sets it from `stored`); and a single
contextActivities object versus a one-element array.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.learning.xapi import formats
from services.learning.xapi.validation import validate_statement
from services.learning.xapi.version import XAPIVersion

_IGNORED = ("authority", "stored", "version")


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _normalize(v) for k, v in value.items()}
        if out.get("objectType") == "Group" and isinstance(out.get("member"), list):
            out["member"] = sorted(out["member"], key=lambda m: json.dumps(m, sort_keys=True))
        return out
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _instant(text: str) -> str:
    return formats.format_timestamp(formats.parse_timestamp(text))


def _comparable(statement: Mapping[str, Any], version: XAPIVersion | str) -> dict[str, Any]:
    normalized = dict(validate_statement(statement, version=version).statement)
    for key in _IGNORED:
        normalized.pop(key, None)
    if "timestamp" in normalized:
        normalized["timestamp"] = _instant(normalized["timestamp"])
    obj = normalized.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement" and "timestamp" in obj:
        normalized["object"] = {**obj, "timestamp": _instant(obj["timestamp"])}
    return _normalize(normalized)


def statements_equivalent(
    stored: Mapping[str, Any],
    incoming: Mapping[str, Any],
    *,
    version: XAPIVersion | str = XAPIVersion.V1_0_3,
) -> bool:
    """True when `incoming` is the same statement as `stored` under the rules above.

    Both are validated (ValidationError if either is invalid); `stored` is typically the
    statement as the LRS kept it, `incoming` what the client sent again.
    """
    a = _comparable(stored, version)
    b = _comparable(incoming, version)
    if ("timestamp" in a) != ("timestamp" in b):
        a.pop("timestamp", None)
        b.pop("timestamp", None)
    return a == b
