"""The Merkle leaf of one learning interaction, recomputable from public data alone.

Inputs, all public:

* ``canonical``: the RFC 8785 canonical bytes of the xAPI statement
  (:func:`chain.translator.signing.canonical_bytes`); ``H = sha256(canonical)``
  (32 bytes);
* ``S``: the 64-byte Ed25519 signature over ``canonical``;
* ``K``: the 32-byte Ed25519 public key.

Every record remembers the encoding of its leaf (the translator's ``records``, the
passport's anchors, the export's entries, the credentials' ``leafEncoding``); a verifier
recomputes each leaf with the encoding its entry names (:func:`leaf_from_hash`). New
statements get :data:`LEAF_ENCODING` (``keiko.leaf.v2``); ``keiko.leaf.v1`` leaves
anchored before stay valid forever.

Encoding ``keiko.leaf.v2`` (no Poseidon permutation: one sha256)::

    leaf = int.from_bytes(sha256(b"keiko.leaf.v2" + H + S + K), "big") & (2**250 - 1)

The prefix is the 13 ASCII bytes of the encoding's name; the hashed message is
13 + 32 + 64 + 32 = 141 bytes. The mask keeps the low 250 bits (as Starknet's
``starknet_keccak`` does), so the leaf is below the field prime. A leaf of 0 would be the
tree's padding: computing one raises (it would take a sha256 preimage of 250 zero bits).

Encoding ``keiko.leaf.v1`` (five Poseidon permutations): each byte string is cut into
16-byte chunks read as big-endian 128-bit integers
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
encoding is injective. A Poseidon output of 0 would be a break of the hash.

Fixed vectors (``chain/tests/translator/test_leaves.py``): for the canonical statement
``{"a":1}`` (H = ``015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862``),
a signature of 64 zero bytes and a key of 32 zero bytes:

* v2: ``0x2c1b9f3ab58ebb31b091095b30db0e15ed2c2e5bfa2531834d955fcca2c4c24``
* v1: ``0x640f222e87e7b94e058a67572d681947db014105927d132d2ffc11a3180b7da``
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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

LEAF_ENCODING_V1 = "keiko.leaf.v1"
LEAF_ENCODING_V2 = "keiko.leaf.v2"
LEAF_ENCODING = LEAF_ENCODING_V2
"""The encoding of every new signed statement's leaf."""
LEAF_TAG = encode_short_string(LEAF_ENCODING_V1)
LEAF_V2_PREFIX = LEAF_ENCODING_V2.encode("ascii")
LEAF_V2_MASK = 2**250 - 1
MAX_ENCODING_CHARS = 64


@dataclass(frozen=True, slots=True)
class LeafInputs:
    """The felts hashed into a v1 leaf, in order (useful for Cairo-side recomputation)."""

    statement_hash: bytes
    felts: tuple[int, ...]


def statement_hash(canonical: bytes) -> bytes:
    """sha256 of the canonical statement bytes."""
    return hashlib.sha256(canonical).digest()


def _checked(statement_sha256: bytes, signature: bytes, public_key: bytes) -> bytes:
    """H + S + K, once their lengths are checked."""
    if not isinstance(statement_sha256, bytes | bytearray) or len(statement_sha256) != 32:
        raise ValidationError("statement_sha256", "must be 32 bytes")
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_BYTES:
        raise ValidationError("signature", f"must be {SIGNATURE_BYTES} bytes")
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != PUBLIC_KEY_BYTES:
        raise ValidationError("public_key", f"must be {PUBLIC_KEY_BYTES} bytes")
    return bytes(statement_sha256) + bytes(signature) + bytes(public_key)


def leaf_felts_from_hash(
    statement_sha256: bytes, signature: bytes, public_key: bytes
) -> tuple[int, ...]:
    """The nine felts of a v1 leaf, from the statement's sha256 instead of the statement."""
    data = _checked(statement_sha256, signature, public_key)
    return (LEAF_TAG, *bytes_to_felts(data))


def leaf_inputs(statement: StatementInput, signature: bytes, public_key: bytes) -> LeafInputs:
    """The v1 leaf's felts of an interaction."""
    digest = statement_hash(canonical_bytes(statement))
    return LeafInputs(digest, leaf_felts_from_hash(digest, signature, public_key))


def _leaf_v1(statement_sha256: bytes, signature: bytes, public_key: bytes) -> int:
    return hash_many(leaf_felts_from_hash(statement_sha256, signature, public_key))


def _leaf_v2(statement_sha256: bytes, signature: bytes, public_key: bytes) -> int:
    data = _checked(statement_sha256, signature, public_key)
    digest = hashlib.sha256(LEAF_V2_PREFIX + data).digest()
    leaf = int.from_bytes(digest, "big") & LEAF_V2_MASK
    if leaf == 0:
        raise ValidationError("leaf", "is 0, which the Merkle tree reserves for padding")
    return leaf


_ENCODINGS: dict[str, Callable[[bytes, bytes, bytes], int]] = {
    LEAF_ENCODING_V1: _leaf_v1,
    LEAF_ENCODING_V2: _leaf_v2,
}
LEAF_ENCODINGS = tuple(_ENCODINGS)
"""Every encoding a verifier recomputes."""


def check_encoding(encoding: object, field: str = "leaf_encoding") -> str:
    """``encoding`` if it is a known leaf encoding, else ``ValidationError``."""
    if not isinstance(encoding, str) or encoding not in _ENCODINGS:
        shown = encoding[:MAX_ENCODING_CHARS] if isinstance(encoding, str) else encoding
        raise ValidationError(
            field, f"unknown leaf encoding {shown!r} (known: {', '.join(LEAF_ENCODINGS)})"
        )
    return encoding


def leaf_from_hash(
    statement_sha256: bytes,
    signature: bytes,
    public_key: bytes,
    encoding: str = LEAF_ENCODING,
) -> int:
    """The leaf felt in ``encoding``, from the statement's sha256."""
    return _ENCODINGS[check_encoding(encoding)](statement_sha256, signature, public_key)


def compute_leaf(
    statement: StatementInput,
    signature: bytes,
    public_key: bytes,
    encoding: str = LEAF_ENCODING,
) -> int:
    """The leaf felt of an interaction (statement as a JSON object or canonical bytes)."""
    digest = statement_hash(canonical_bytes(statement))
    return leaf_from_hash(digest, signature, public_key, encoding)
