"""Leaf encodings keiko.leaf.v1 and keiko.leaf.v2: fixed vectors and independent
recomputations."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from nacl.signing import SigningKey

# cairo-lang's pure-Python Poseidon is the reference; its module needs no chain.cairo_compat.
from starkware.cairo.common.poseidon_hash import poseidon_hash_many as ref_hash_many

from chain.translator.leaves import (
    LEAF_ENCODING,
    LEAF_ENCODINGS,
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

V1 = "keiko.leaf.v1"
V2 = "keiko.leaf.v2"

# Fixed vectors: anyone implementing keiko.leaf.v1 / v2 must reproduce these.
VECTOR_SIGNATURE = (
    "b3160aae4510a6ef661ddf053bf47515d0731324119f561e09d7c4d8adf1cb29"
    "cd0c41f2c82af62d89d0cc4174f75927db8d894d9c3f2f043f4ca5e03f07d602"
)
VECTOR_PUBLIC_KEY = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
VECTOR_SHA256 = "6c2e3a6fa62cf8bc5c0f41d3363692e674f91a350c3e2d12f309232a1be0f26a"
VECTOR_LEAF = 0x7981EBA023906B6AFA59C48D7F551D123C4B9522F6E484B8FA578E90FE46F31
ZERO_VECTOR_LEAF = 0x640F222E87E7B94E058A67572D681947DB014105927D132D2FFC11A3180B7DA
VECTOR_LEAF_V2 = 0x1E5B4B50113349C88C30DC726F7624B0697AB7D8B903776FA5607C3F43CD8CF
ZERO_VECTOR_LEAF_V2 = 0x2C1B9F3AB58EBB31B091095B30DB0E15ED2C2E5BFA2531834D955FCCA2C4C24


def test_leaf_tag_is_the_short_string() -> None:
    assert LEAF_TAG == int.from_bytes(b"keiko.leaf.v1", "big") == 0x6B65696B6F2E6C6561662E7631


def test_fixed_vector_statement() -> None:
    canonical = rfc8785.dumps(STATEMENT)
    signature = KEY.sign(canonical).signature
    assert signature.hex() == VECTOR_SIGNATURE
    assert bytes(KEY.verify_key).hex() == VECTOR_PUBLIC_KEY
    assert hashlib.sha256(canonical).hexdigest() == VECTOR_SHA256
    for encoding, expected in ((V1, VECTOR_LEAF), (V2, VECTOR_LEAF_V2)):
        assert compute_leaf(STATEMENT, signature, bytes(KEY.verify_key), encoding) == expected
        assert compute_leaf(canonical, signature, bytes(KEY.verify_key), encoding) == expected
        assert (
            leaf_from_hash(
                bytes.fromhex(VECTOR_SHA256),
                bytes.fromhex(VECTOR_SIGNATURE),
                bytes.fromhex(VECTOR_PUBLIC_KEY),
                encoding,
            )
            == expected
        )


def test_fixed_vector_zeros() -> None:
    assert compute_leaf(b'{"a":1}', bytes(64), bytes(32), V1) == ZERO_VECTOR_LEAF
    assert compute_leaf(b'{"a":1}', bytes(64), bytes(32), V2) == ZERO_VECTOR_LEAF_V2


def test_new_leaves_are_v2() -> None:
    assert LEAF_ENCODING == V2
    assert LEAF_ENCODINGS == (V1, V2)
    assert compute_leaf(b'{"a":1}', bytes(64), bytes(32)) == ZERO_VECTOR_LEAF_V2


def test_v2_independent_recomputation_from_the_docstring() -> None:
    """keiko.leaf.v2 exactly as the module docstring describes it, with hashlib alone."""
    h = bytes.fromhex(VECTOR_SHA256)
    s = bytes.fromhex(VECTOR_SIGNATURE)
    k = bytes.fromhex(VECTOR_PUBLIC_KEY)
    message = b"keiko.leaf.v2" + h + s + k
    assert len(message) == 141
    digest = hashlib.sha256(message).digest()
    assert int.from_bytes(digest, "big") % 2**250 == VECTOR_LEAF_V2
    assert VECTOR_LEAF_V2 < 2**250


def test_the_encodings_give_different_leaves_for_the_same_data() -> None:
    s = bytes.fromhex(VECTOR_SIGNATURE)
    k = bytes.fromhex(VECTOR_PUBLIC_KEY)
    assert compute_leaf(STATEMENT, s, k, V1) != compute_leaf(STATEMENT, s, k, V2)


def test_a_v2_leaf_of_zero_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    class Zero:
        def digest(self) -> bytes:
            return b"\xfc" + bytes(31)  # only the six masked-off top bits set

    monkeypatch.setattr("chain.translator.leaves.hashlib.sha256", lambda _data: Zero())
    with pytest.raises(ValidationError) as err:
        leaf_from_hash(bytes(32), bytes(64), bytes(32), V2)
    assert err.value.field == "leaf"


@pytest.mark.parametrize("encoding", ["keiko.leaf.v3", "", "KEIKO.LEAF.V1", "keiko.record.v1"])
def test_unknown_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(ValidationError) as err:
        leaf_from_hash(bytes(32), bytes(64), bytes(32), encoding)
    assert err.value.field == "leaf_encoding"
    assert "unknown leaf encoding" in err.value.reason


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


@pytest.mark.parametrize("encoding", [V1, V2])
def test_every_input_changes_the_leaf(encoding: str) -> None:
    canonical = rfc8785.dumps(STATEMENT)
    s = KEY.sign(canonical).signature
    k = bytes(KEY.verify_key)
    base = compute_leaf(canonical, s, k, encoding)
    changed = {**STATEMENT, "timestamp": "2026-01-01T00:00:01Z"}
    assert compute_leaf(changed, s, k, encoding) != base
    assert compute_leaf(canonical, s[:-1] + bytes([s[-1] ^ 1]), k, encoding) != base
    assert compute_leaf(canonical, s, k[:-1] + bytes([k[-1] ^ 1]), encoding) != base


@pytest.mark.parametrize("encoding", [V1, V2])
def test_bad_inputs_rejected(encoding: str) -> None:
    with pytest.raises(ValidationError) as err:
        compute_leaf(STATEMENT, bytes(63), bytes(32), encoding)
    assert err.value.field == "signature"
    with pytest.raises(ValidationError) as err:
        compute_leaf(STATEMENT, bytes(64), bytes(33), encoding)
    assert err.value.field == "public_key"
    with pytest.raises(ValidationError):
        leaf_from_hash(bytes(31), bytes(64), bytes(32), encoding)
    with pytest.raises(ValidationError):
        compute_leaf(b'{"a": 1}', bytes(64), bytes(32), encoding)
