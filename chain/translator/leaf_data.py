"""What SubmitForAnchoring anchors: the leaf of its ``leaf_data``.

**leaf_data of SubmitForAnchoring**, two kinds:

* *signed statement* (format ``keiko.anchor.v1``, required for the ``learning`` domain):
  the RFC 8785 canonical JSON of ``{"learner_id": str, "statement": {...},
  "signature": "<128 hex>", "public_key": "<64 hex>"}`` (:func:`anchor_leaf_data` builds
  it). The translator checks that the bytes are canonical, that the Ed25519 signature is
  valid over the statement's canonical bytes, and that the public key is the author's
  (their custodial key or their registered key); the leaf is ``keiko.leaf.v2`` of (sha256
  of the statement, signature, public key) (:data:`chain.translator.leaves.LEAF_ENCODING`),
  the same leaf the passport verifier recomputes; the record stores that encoding. Only
  the statement's hash is stored here.
* *unsigned record* (reputation, marketplace, governance; trusted callers only): any
  bytes, typically the canonical JSON of the record; the leaf is ``keiko.record.v1``
  (:func:`record_leaf`): ``poseidon_hash_many([short string 'keiko.record.v1',
  H[0:16], H[16:32]])`` with ``H = sha256(leaf_data)`` (felts as in
  :mod:`chain.translator.felts`), so a record's sha256 digest is what the chain commits to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.translator.access import required_text
from chain.translator.authors import statement_author
from chain.translator.felts import bytes_to_felts, encode_short_string
from chain.translator.leaves import LEAF_ENCODING, leaf_from_hash, statement_hash
from chain.translator.poseidon import hash_many
from chain.translator.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    canonical_bytes,
    decode_hex,
    parse_canonical,
    verify_canonical,
)
from services.kit.errors import ValidationError

MAX_LEAF_DATA_BYTES = 256 * 1024


def anchor_leaf_data(
    learner_id: str, statement: Mapping[str, Any], signature: bytes, public_key: bytes
) -> bytes:
    """The ``leaf_data`` of SubmitForAnchoring for a signed statement."""
    return canonical_bytes(
        {
            "learner_id": learner_id,
            "statement": dict(statement),
            "signature": signature.hex(),
            "public_key": public_key.hex(),
        },
        "leaf_data",
    )


RECORD_LEAF_ENCODING = "keiko.record.v1"
ENVELOPE_MEMBERS = frozenset({"learner_id", "statement", "signature", "public_key"})


def record_leaf(data: bytes) -> int:
    """The ``keiko.record.v1`` leaf of an unsigned record (see the module docstring)."""
    digest = hashlib.sha256(data).digest()
    return hash_many([encode_short_string(RECORD_LEAF_ENCODING), *bytes_to_felts(digest)])


def is_signed_envelope(leaf_data: bytes) -> bool:
    """Does ``leaf_data`` look like a ``keiko.anchor.v1`` signed-statement envelope?"""
    try:
        body = json.loads(leaf_data)
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(body, dict) and set(body) == ENVELOPE_MEMBERS


@dataclass(frozen=True)
class ParsedLeafData:
    learner_id: str
    author_id: str
    statement_sha256: bytes
    signature: bytes
    public_key: bytes
    leaf: int
    leaf_encoding: str = LEAF_ENCODING


def parse_leaf_data(leaf_data: bytes) -> ParsedLeafData:
    """Decode and check a ``keiko.anchor.v1`` envelope (signature verified)."""
    if not leaf_data:
        raise ValidationError("leaf_data", "is required")
    if len(leaf_data) > MAX_LEAF_DATA_BYTES:
        raise ValidationError("leaf_data", f"must be at most {MAX_LEAF_DATA_BYTES} bytes")
    _, body = parse_canonical(leaf_data, "leaf_data")
    unknown = set(body) - {"learner_id", "statement", "signature", "public_key"}
    if unknown:
        raise ValidationError(f"leaf_data.{sorted(unknown)[0]}", "unknown member")
    learner_id = required_text(body.get("learner_id"), "leaf_data.learner_id")
    statement = body.get("statement")
    if not isinstance(statement, dict):
        raise ValidationError("leaf_data.statement", "must be a JSON object")
    signature = decode_hex(body.get("signature"), "leaf_data.signature", SIGNATURE_BYTES)
    public_key = decode_hex(body.get("public_key"), "leaf_data.public_key", PUBLIC_KEY_BYTES)
    canonical = canonical_bytes(statement, "leaf_data.statement")
    author_id = statement_author(statement, learner_id, field="leaf_data.statement")
    verify_canonical(canonical, signature, public_key).raise_for_failure("leaf_data.signature")
    digest = statement_hash(canonical)
    return ParsedLeafData(
        learner_id,
        author_id,
        digest,
        signature,
        public_key,
        leaf_from_hash(digest, signature, public_key, LEAF_ENCODING),
        LEAF_ENCODING,
    )
