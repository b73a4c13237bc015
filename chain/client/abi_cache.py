"""Parse each contract ABI once per process, with one grammar.

starknet-py parses a Cairo 1 ABI by compiling the same Lark grammar again for every inline
type (``parser_transformer.parse``): about a third of a second per type here, so binding
the Keiko contracts took 5-20 s per :class:`~chain.client.core.KeikoChain` connection, and
the translator connects one per learner account. ``install()`` (idempotent) makes

* the type parser reuse one compiled grammar (``lark.Lark`` parsers are reusable; the
  transformer that builds the Cairo types is still created per type, as before), and
* ``ContractData.parsed_abi`` parse each (Cairo version, ABI) once: the result is a tree of
  dataclasses depending on nothing but the ABI, shared by every contract object bound to
  it.

``uninstall()`` restores starknet-py's own functions.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from typing import Any

import lark
from starknet_py.abi.v2 import parser_transformer
from starknet_py.cairo.v2 import type_parser
from starknet_py.contract import ContractData

_ORIGINAL = ContractData.__dict__["parsed_abi"]
_ORIGINAL_PARSE = parser_transformer.parse
_grammar: lark.Lark | None = None
_parsed: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def _memoized_parsed_abi(self: ContractData) -> Any:
    key = (self.cairo_version, json.dumps(self.abi, sort_keys=True))
    with _lock:
        found = _parsed.get(key)
    if found is None:
        found = _ORIGINAL.func(self)
        with _lock:
            _parsed[key] = found
    return found


_MEMOIZED = cached_property(_memoized_parsed_abi)
_MEMOIZED.__set_name__(ContractData, "parsed_abi")


def _parse_type(code: str, type_identifiers: Any) -> Any:
    """``parser_transformer.parse`` with the grammar compiled once."""
    global _grammar
    with _lock:
        if _grammar is None:
            _grammar = lark.Lark(grammar=parser_transformer.ABI_EBNF, start="type", parser="earley")
        tree = _grammar.parse(code)
    return parser_transformer.ParserTransformer(type_identifiers).transform(tree)


def install() -> None:
    ContractData.parsed_abi = _MEMOIZED  # type: ignore[method-assign,assignment]
    type_parser.parse = _parse_type  # type: ignore[attr-defined]


def uninstall() -> None:
    ContractData.parsed_abi = _ORIGINAL  # type: ignore[method-assign]
    type_parser.parse = _ORIGINAL_PARSE  # type: ignore[attr-defined]
