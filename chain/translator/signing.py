"""Ed25519 signatures over the canonical bytes of xAPI statements.

**Canonical bytes.** A statement (a JSON object) is serialized with RFC 8785, the JSON
Canonicalization Scheme (package ``rfc8785``): UTF-8, object members sorted by UTF-16
code units, no insignificant whitespace, ECMAScript number formatting. Integers beyond
``±(2**53 - 1)``, NaN and infinities have no canonical form and are rejected. Bytes that
are already canonical are accepted as they are; bytes that are JSON but not canonical
(whitespace, member order, duplicate members, ``1.0`` for ``1``) are rejected rather than
silently re-encoded, because the signature must cover exactly what will be re-computed.

**Signatures.** Pure Ed25519 (RFC 8032) through PyNaCl/libsodium, over the canonical
bytes themselves (not a pre-hash): 64-byte signatures, 32-byte public keys.

**Two key modes.** Custodial: the translator signs with the learner's key held in the
:mod:`chain.translator.keys` vault (:meth:`KeyVault.sign`). Device-signed: the learner's
device signs; the translator only checks the signature *and* that the public key is the
key registered for that learner (:func:`verify_device_signature`), and never re-signs.

Verification never raises for a bad signature: it returns a :class:`SignatureCheck` with a
named :class:`SignatureFailure`; :meth:`SignatureCheck.raise_for_failure` turns it into a
``ValidationError`` for request handlers.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from services.kit import jcs
from services.kit.errors import ValidationError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32

StatementInput = Mapping[str, Any] | bytes | bytearray
"""A statement as a JSON object (mapping) or as its RFC 8785 canonical bytes."""

KeyLookup = Callable[[str], bytes | None]
"""learner id -> the learner's registered Ed25519 public key (32 bytes), or None."""

AsyncKeyLookup = Callable[[str], Awaitable[bytes | None]]
"""The same lookup for asyncio callers (a repository or a gRPC client)."""


class SignatureFailure(StrEnum):
    """Why a signature was not accepted (the value is the human-readable reason)."""

    MALFORMED_SIGNATURE = "signature malformed"
    MALFORMED_PUBLIC_KEY = "public key malformed"
    INVALID = "signature invalid"
    NO_REGISTERED_KEY = "the author has no registered key"
    KEY_NOT_REGISTERED = "public key is not the author's registered key"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of a verification: ``ok`` or a named ``reason``."""

    ok: bool
    reason: SignatureFailure | None = None

    def __bool__(self) -> bool:
        return self.ok

    def raise_for_failure(self, field: str = "signature") -> None:
        """Raise ``ValidationError(field, reason)`` unless the check passed."""
        if not self.ok:
            assert self.reason is not None
            raise ValidationError(field, self.reason.value)


VALID = SignatureCheck(ok=True)


def _fail(reason: SignatureFailure) -> SignatureCheck:
    return SignatureCheck(ok=False, reason=reason)


def canonical_bytes(statement: StatementInput, field: str = "statement") -> bytes:
    """RFC 8785 canonical bytes of a statement (a JSON object or canonical bytes)."""
    if isinstance(statement, bytes | bytearray):
        return parse_canonical(statement, field)[0]
    if not isinstance(statement, Mapping):
        raise ValidationError(field, "must be a JSON object or its canonical bytes")
    return _canonicalize(statement if isinstance(statement, dict) else dict(statement), field)


def parse_canonical(data: bytes | bytearray, field: str) -> tuple[bytes, dict[str, Any]]:
    """Check that ``data`` is the RFC 8785 canonical form of a JSON object; return the
    bytes and the object (parsed once, for callers that need both)."""
    raw = bytes(data)
    try:
        parsed = jcs.loads(raw)
    except ValueError:
        # orjson refuses what json accepts and the canonicalizer names (huge integers,
        # NaN literals), and what neither parses: json decides which it is.
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValidationError(field, "is not UTF-8 JSON") from None
    if not isinstance(parsed, dict):
        raise ValidationError(field, "must be a JSON object")
    if _canonicalize(parsed, field) != raw:
        raise ValidationError(field, "bytes are not RFC 8785 canonical JSON")
    return raw, parsed


def _canonicalize(value: Any, field: str) -> bytes:
    try:
        return jcs.dumps(value)
    except rfc8785.IntegerDomainError:
        raise ValidationError(field, "integer outside the I-JSON range ±(2**53 - 1)") from None
    except rfc8785.FloatDomainError:
        raise ValidationError(field, "NaN and infinities have no JSON form") from None
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationError(field, f"not serializable as JSON: {exc}") from None


def public_key_of(signing_key: SigningKey) -> bytes:
    """The 32-byte Ed25519 public key of a signing key."""
    return bytes(signing_key.verify_key)


def sign(statement: StatementInput, signing_key: SigningKey) -> bytes:
    """Ed25519 signature (64 bytes) over the statement's canonical bytes."""
    if not isinstance(signing_key, SigningKey):
        raise ValidationError("signing_key", "must be a nacl.signing.SigningKey")
    message = canonical_bytes(statement)
    return bytes(signing_key.sign(message).signature)


def check_signature_bytes(signature: object) -> SignatureCheck:
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_BYTES:
        return _fail(SignatureFailure.MALFORMED_SIGNATURE)
    return VALID


def check_public_key_bytes(public_key: object) -> SignatureCheck:
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != PUBLIC_KEY_BYTES:
        return _fail(SignatureFailure.MALFORMED_PUBLIC_KEY)
    return VALID


def verify(statement: StatementInput, signature: bytes, public_key: bytes) -> SignatureCheck:
    """Check an Ed25519 signature over the statement's canonical bytes.

    Raises ``ValidationError`` only when the statement itself has no canonical form;
    a bad signature or key is reported in the returned :class:`SignatureCheck`.
    """
    return verify_canonical(canonical_bytes(statement), signature, public_key)


def verify_canonical(message: bytes, signature: bytes, public_key: bytes) -> SignatureCheck:
    """:func:`verify` for a caller that already holds the canonical bytes (checked by
    :func:`canonical_bytes` or :func:`parse_canonical`): they are not checked again."""
    for check in (check_signature_bytes(signature), check_public_key_bytes(public_key)):
        if not check.ok:
            return check
    try:
        VerifyKey(bytes(public_key)).verify(message, bytes(signature))
    except BadSignatureError:
        return _fail(SignatureFailure.INVALID)
    except (ValueError, TypeError):
        return _fail(SignatureFailure.MALFORMED_PUBLIC_KEY)
    return VALID


def check_device_signature(
    statement: StatementInput,
    signature: bytes,
    public_key: bytes,
    registered_key: bytes | None,
) -> SignatureCheck:
    """Device-signed mode, pure core: the key must be the registered one, then verify."""
    key_check = check_public_key_bytes(public_key)
    if not key_check.ok:
        return key_check
    if registered_key is None:
        return _fail(SignatureFailure.NO_REGISTERED_KEY)
    if not isinstance(registered_key, bytes | bytearray) or not hmac.compare_digest(
        bytes(registered_key), bytes(public_key)
    ):
        return _fail(SignatureFailure.KEY_NOT_REGISTERED)
    return verify(statement, signature, public_key)


def _check_learner_id(learner_id: object) -> str:
    if not isinstance(learner_id, str) or not learner_id.strip():
        raise ValidationError("learner_id", "must be a non-empty string")
    return learner_id


def verify_device_signature(
    learner_id: str,
    statement: StatementInput,
    signature: bytes,
    public_key: bytes,
    lookup: KeyLookup,
) -> SignatureCheck:
    """Device-signed mode: check ``public_key`` is ``learner_id``'s registered key
    (through ``lookup``) and that ``signature`` is valid. Never signs anything."""
    return check_device_signature(
        statement, signature, public_key, lookup(_check_learner_id(learner_id))
    )


async def averify_device_signature(
    learner_id: str,
    statement: StatementInput,
    signature: bytes,
    public_key: bytes,
    lookup: AsyncKeyLookup,
) -> SignatureCheck:
    """:func:`verify_device_signature` with an async key lookup."""
    registered = await lookup(_check_learner_id(learner_id))
    return check_device_signature(statement, signature, public_key, registered)


def decode_hex(text: object, field: str, length: int) -> bytes:
    """Decode a hex string of exactly ``length`` bytes (an optional ``0x`` is allowed)."""
    if not isinstance(text, str):
        raise ValidationError(field, "must be a hexadecimal string")
    digits = text[2:] if text.startswith(("0x", "0X")) else text
    if len(digits) != 2 * length:
        raise ValidationError(field, f"must be {length} bytes ({2 * length} hex digits)")
    if any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValidationError(field, "must be a hexadecimal string")
    return bytes.fromhex(digits)
