"""Starknet's Poseidon hash over felts, as Cairo computes it.

Implementation: ``poseidon_py`` (the C ``hades_permutation`` that starknet-py itself uses),
about four times faster than cairo-lang's pure-Python reference
(``starkware.cairo.common.poseidon_hash``); the tests prove both agree.

* :func:`hash_pair` ``(a, b)`` = ``hades_permutation(a, b, 2)[0]``: Cairo's
  ``core::poseidon::hades_permutation(a, b, 2)`` first output, i.e. cairo-lang's and
  starknet-py's ``poseidon_hash(a, b)``.
* :func:`hash_many` ``(xs)`` = sponge with rate 2, padding ``1`` then ``0`` to an even
  length: Cairo's ``core::poseidon::poseidon_hash_span(xs.span())``, i.e.
  ``poseidon_hash_many(xs)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from poseidon_py.poseidon_hash import poseidon_hash as _poseidon_hash
from poseidon_py.poseidon_hash import poseidon_hash_many as _poseidon_hash_many

from chain.translator.felts import check_felt


def hash_pair(left: int, right: int) -> int:
    """Poseidon of two felts (Starknet ``poseidon_hash``)."""
    check_felt(left, "left")
    check_felt(right, "right")
    return int(_poseidon_hash(left, right))


def hash_many(values: Sequence[int]) -> int:
    """Poseidon of felts (Starknet ``poseidon_hash_many``, Cairo ``poseidon_hash_span``)."""
    items = list(values)
    for i, value in enumerate(items):
        check_felt(value, f"values[{i}]")
    return int(_poseidon_hash_many(items))


def hash_pair_unchecked(left: int, right: int) -> int:
    """:func:`hash_pair` for callers that already hold valid felts (tree building)."""
    return int(_poseidon_hash(left, right))
