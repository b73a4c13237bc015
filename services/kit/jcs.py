"""RFC 8785 (JSON Canonicalization Scheme) serialization, fast where it is provably the same
(the statements the translator signs, the learning service's statement hashes).

:func:`dumps` returns exactly the bytes of ``rfc8785.dumps`` (the reference, pure Python)
and raises its exceptions. For values whose canonical form orjson (Rust) produces
byte for byte, it serializes with ``orjson.dumps(value, option=OPT_SORT_KEYS)`` instead,
about ten times faster; everything else goes to ``rfc8785``. A value qualifies when
every node is one of:

* ``None``, ``True``/``False`` (exact ``bool``);
* an exact ``int`` within ``±(2**53 - 1)`` (both print the decimal digits);
* an exact ``float`` that is not integer-valued with ``1e-5 <= |x| < 1e15``: in that range
  both print the shortest round-trip digits in plain decimal notation (ECMAScript's
  ``Number.prototype.toString``, and ryu), never an exponent; integer-valued floats are
  left out because ECMAScript prints ``1`` where orjson prints ``1.0``;
* an exact ``str``: both escape ``"``, ``\\``, ``\\b \\f \\n \\r \\t`` and other control
  characters as ``\\u00xx`` (lowercase), and write everything else as UTF-8; a lone
  surrogate makes orjson raise, and that value is then handed to ``rfc8785`` (which
  rejects it too);
* an exact ``list``;
* an exact ``dict`` whose keys are ASCII ``str``: RFC 8785 orders members by UTF-16 code
  units, orjson by UTF-8 bytes; the two orders agree on ASCII (they differ only between
  characters above U+FFFF and U+E000-U+FFFF), so any non-ASCII key goes to ``rfc8785``.

``chain/tests/translator/test_jcs.py`` compares both on hypothesis-generated JSON.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

try:
    import orjson
except ImportError:  # an environment installed before orjson became a dependency
    orjson = None  # type: ignore[assignment]  # rfc8785 alone: the same bytes, slower

__all__ = ["dumps", "loads", "orjson_is_canonical"]

_INT_MAX = 2**53 - 1
_FLOAT_MIN = 1e-5
_FLOAT_MAX = 1e15


def orjson_is_canonical(value: Any) -> bool:
    """True when orjson's sorted-keys output of ``value`` is its RFC 8785 form."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -_INT_MAX <= value <= _INT_MAX
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not orjson_is_canonical(item):
                return False
        return True
    if kind is list:
        return all(orjson_is_canonical(item) for item in value)
    if kind is float:
        magnitude = abs(value)
        return _FLOAT_MIN <= magnitude < _FLOAT_MAX and not value.is_integer()
    return False


def dumps(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of ``value`` (``rfc8785.dumps``, same errors)."""
    if orjson is not None and orjson_is_canonical(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # lone surrogates, nesting deeper than orjson's limit: the reference decides
    return rfc8785.dumps(value)


def loads(raw: bytes) -> Any:
    """Parse JSON bytes (orjson); raises ``ValueError`` where orjson does not parse them
    (callers fall back to :mod:`json`, which also accepts huge integers and NaN literals
    so that the canonicalizer can name why they are refused)."""
    if orjson is None:
        return json.loads(raw)
    return orjson.loads(raw)
