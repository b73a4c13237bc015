"""JSON read within limits: UTF-8, a maximum nesting depth, no NaN/Infinity.

Python's json module recurses once per nesting level, so a body of 100,000 `[` raises
RecursionError (a 500 where it escapes). The depth is measured first, by one linear pass
over the text that skips strings, and a body deeper than the limit is refused before
json.loads sees it.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

# Deeper than any real xAPI statement (about 10 levels) or GraphQL variables object.
MAX_JSON_DEPTH = 64


class JsonRefused(ValueError):
    """The text is not JSON we accept; `reason` says why, for a client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar). Linear and
    C-speed: strings are cut out by a regex, then the brackets left are summed."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _reject_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not JSON")


def loads_limited(data: str | bytes, max_depth: int = MAX_JSON_DEPTH, **kwargs: Any) -> Any:
    """json.loads for untrusted input; raises JsonRefused with a client-facing reason."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("body is not UTF-8") from None
    else:
        text = data
    if json_depth(text) > max_depth:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")
    kwargs.setdefault("parse_constant", _reject_constant)
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError as exc:
        raise JsonRefused(f"body is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:  # unreachable within MAX_JSON_DEPTH; kept as a backstop
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
