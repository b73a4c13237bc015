"""Leaf encoding keiko.leaf.v1: fixed vectors and an independent recomputation."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from nacl.signing import SigningKey

# cairo-lang's pure-Python Poseidon is the reference; its module needs no chain.cairo_compat.
from starkware.cairo.common.poseidon_hash import poseidon_hash_many as ref_hash_many

from chain.translator.leaves import (
    LEAF_TAG,
    compute_leaf,
    leaf_from_hash,
    leaf_inputs,
)
from services.kit.errors import ValidationError

STATEMENT: dict[str, Any] = {
    "actor": {"mbox": "mailto:ana@example.org", "objectType": "Agent"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
    "object": {"id": "https://keiko.example/courses/linear-algebra/class-2/q3"},
    "result": {"score": {"scaled": 0.8}},
    "timestamp": "2026-01-01T00:00:00Z",
}
KEY = SigningKey(bytes(range(32)))

# Fixed vectors: anyone implementing keiko.leaf.v1 must reproduce these.
VECTOR_SIGNATURE = (
    "b3160aae4510a6ef661ddf053bf47515d0731324119f561e09d7c4d8adf1cb29"
    "cd0c41f2c82af62d89d0cc4174f75927db8d894d9c3f2f043f4ca5e03f07d602"
)
VECTOR_PUBLIC_KEY = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
VECTOR_SHA256 = "6c2e3a6fa62cf8bc5c0f41d3363692e674f91a350c3e2d12f309232a1be0f26a"
VECTOR_LEAF = 0x7981EBA023906B6AFA59C48D7F551D123C4B9522F6E484B8FA578E90FE46F31
ZERO_VECTOR_LEAF = 0x640F222E87E7B94E058A67572D681947DB014105927D132D2FFC11A3180B7DA


def test_leaf_tag_is_the_short_string() -> None:
    assert LEAF_TAG == int.from_bytes(b"keiko.leaf.v1", "big") == 0x6B65696B6F2E6C6561662E7631


def test_fixed_vector_statement() -> None:
    canonical = rfc8785.dumps(STATEMENT)
    signature = KEY.sign(canonical).signature
    assert signature.hex() == VECTOR_SIGNATURE
    assert bytes(KEY.verify_key).hex() == VECTOR_PUBLIC_KEY
    assert hashlib.sha256(canonical).hexdigest() == VECTOR_SHA256
    assert compute_leaf(STATEMENT, signature, bytes(KEY.verify_key)) == VECTOR_LEAF
    assert compute_leaf(canonical, signature, bytes(KEY.verify_key)) == VECTOR_LEAF
    assert (
        leaf_from_hash(
            bytes.fromhex(VECTOR_SHA256),
            bytes.fromhex(VECTOR_SIGNATURE),
            bytes.fromhex(VECTOR_PUBLIC_KEY),
        )
        == VECTOR_LEAF
    )


def test_fixed_vector_zeros() -> None:
    assert compute_leaf(b'{"a":1}', bytes(64), bytes(32)) == ZERO_VECTOR_LEAF


def test_independent_recomputation_from_the_docstring() -> None:
    """Recompute the leaf exactly as the module docstring describes, with cairo-lang's
    reference Poseidon and nothing from Keiko."""
    canonical = rfc8785.dumps(STATEMENT)
    h = hashlib.sha256(canonical).digest()
    s = bytes.fromhex(VECTOR_SIGNATURE)
    k = bytes.fromhex(VECTOR_PUBLIC_KEY)

    def chunks(b: bytes) -> list[int]:
        return [int.from_bytes(b[i : i + 16], "big") for i in range(0, len(b), 16)]

    felts = [int.from_bytes(b"keiko.leaf.v1", "big"), *chunks(h), *chunks(s), *chunks(k)]
    assert len(felts) == 9
    assert list(leaf_inputs(STATEMENT, s, k).felts) == felts
    assert ref_hash_many(felts) == VECTOR_LEAF


def test_every_input_changes_the_leaf() -> None:
    canonical = rfc8785.dumps(STATEMENT)
    s = KEY.sign(canonical).signature
    k = bytes(KEY.verify_key)
    base = compute_leaf(canonical, s, k)
    assert compute_leaf({**STATEMENT, "timestamp": "2026-01-01T00:00:01Z"}, s, k) != base
    assert compute_leaf(canonical, s[:-1] + bytes([s[-1] ^ 1]), k) != base
    assert compute_leaf(canonical, s, k[:-1] + bytes([k[-1] ^ 1])) != base


def test_bad_inputs_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        compute_leaf(STATEMENT, bytes(63), bytes(32))
    assert err.value.field == "signature"
    with pytest.raises(ValidationError) as err:
        compute_leaf(STATEMENT, bytes(64), bytes(33))
    assert err.value.field == "public_key"
    with pytest.raises(ValidationError):
        leaf_from_hash(bytes(31), bytes(64), bytes(32))
    with pytest.raises(ValidationError):
        compute_leaf(b'{"a": 1}', bytes(64), bytes(32))
