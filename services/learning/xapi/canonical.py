"""Canonical bytes of a statement (RFC 8785, JSON Canonicalization Scheme) and its hash.

The chain translator signs exactly `canonical_bytes(statement)` with the learner's
Ed25519 key and anchors `statement_hash(statement)`; anyone re-derives both from the
statement alone. Always canonicalize the normalized statement `validate_statement`
returns, so that the bytes cannot fail to encode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785

from services.kit import jcs
from services.kit.errors import ValidationError


def canonical_bytes(statement: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical UTF-8 JSON of `statement` (sorted keys, ECMAScript numbers)."""
    try:
        return jcs.dumps(dict(statement))
    except rfc8785.CanonicalizationError as exc:
        raise ValidationError("statement", f"cannot be canonicalized (RFC 8785): {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError("statement", f"is not JSON: {exc}") from None


def statement_hash(statement: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical bytes (32 bytes)."""
    return hashlib.sha256(canonical_bytes(statement)).digest()


def statement_hash_hex(statement: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical bytes, lower-case hex (64 characters)."""
    return statement_hash(statement).hex()
