"""The Merkle leaf of one learning interaction, recomputable from public data alone.

Encoding ``keiko.leaf.v1``. Inputs, all public:

* ``canonical``: the RFC 8785 canonical bytes of the xAPI statement
  (:func:`chain.translator.signing.canonical_bytes`);
* ``signature``: the 64-byte Ed25519 signature over ``canonical``;
* ``public_key``: the 32-byte Ed25519 public key.

Each byte string is cut into 16-byte chunks read as big-endian 128-bit integers
(:func:`chain.translator.felts.bytes_to_felts`), and the leaf is Starknet's Poseidon
``poseidon_hash_many`` (Cairo ``poseidon_hash_span``) over these nine felts, in order::

    leaf = poseidon_hash_many([
        LEAF_TAG,                                  # Cairo short string 'keiko.leaf.v1'
        H[0:16],  H[16:32],                        # H = sha256(canonical)
        S[0:16],  S[16:32], S[32:48], S[48:64],    # S = signature
        K[0:16],  K[16:32],                        # K = public key
    ])

``LEAF_TAG = int.from_bytes(b"keiko.leaf.v1", "big")`` =
``0x6b65696b6f2e6c6561662e7631``. Every 128-bit chunk is below the field prime, so the
encoding is injective. A leaf is never 0 (the Merkle tree reserves 0 for padding; a
Poseidon output of 0 would be a break of the hash).

Example (see the fixed vectors in ``chain/tests/translator/test_leaves.py``):
``{"a": 1}`` canonicalizes to ``b'{"a":1}'``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from chain.translator.felts import bytes_to_felts, encode_short_string
from chain.translator.poseidon import hash_many
from chain.translator.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    StatementInput,
    canonical_bytes,
)
from services.kit.errors import ValidationError

LEAF_ENCODING = "keiko.leaf.v1"
LEAF_TAG = encode_short_string(LEAF_ENCODING)


@dataclass(frozen=True, slots=True)
class LeafInputs:
    """The felts hashed into a leaf, in order (useful for Cairo-side recomputation)."""

    statement_hash: bytes
    felts: tuple[int, ...]


def statement_hash(canonical: bytes) -> bytes:
    """sha256 of the canonical statement bytes."""
    return hashlib.sha256(canonical).digest()


def leaf_felts_from_hash(
    statement_sha256: bytes, signature: bytes, public_key: bytes
) -> tuple[int, ...]:
    """The nine felts of a leaf, from the statement's sha256 instead of the statement."""
    if not isinstance(statement_sha256, bytes | bytearray) or len(statement_sha256) != 32:
        raise ValidationError("statement_sha256", "must be 32 bytes")
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_BYTES:
        raise ValidationError("signature", f"must be {SIGNATURE_BYTES} bytes")
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != PUBLIC_KEY_BYTES:
        raise ValidationError("public_key", f"must be {PUBLIC_KEY_BYTES} bytes")
    return (
        LEAF_TAG,
        *bytes_to_felts(bytes(statement_sha256), "statement_sha256"),
        *bytes_to_felts(bytes(signature), "signature"),
        *bytes_to_felts(bytes(public_key), "public_key"),
    )


def leaf_inputs(statement: StatementInput, signature: bytes, public_key: bytes) -> LeafInputs:
    digest = statement_hash(canonical_bytes(statement))
    return LeafInputs(digest, leaf_felts_from_hash(digest, signature, public_key))


def leaf_from_hash(statement_sha256: bytes, signature: bytes, public_key: bytes) -> int:
    """The leaf felt, from the statement's sha256."""
    return hash_many(leaf_felts_from_hash(statement_sha256, signature, public_key))


def compute_leaf(statement: StatementInput, signature: bytes, public_key: bytes) -> int:
    """The leaf felt of an interaction (statement as a JSON object or canonical bytes)."""
    return hash_many(leaf_inputs(statement, signature, public_key).felts)
