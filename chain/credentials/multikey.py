"""Ed25519 keys as Multikey values and ``did:key`` identifiers, resolved offline.

* **Multibase** ``base58btc``: the letter ``z`` followed by the Bitcoin base58 alphabet
  (W3C Controlled Identifiers, Multibase).
* **Multikey** (Ed25519 public key): multicodec ``ed25519-pub`` (varint ``0xed 0x01``)
  followed by the 32 key bytes, multibase-encoded: always 48 characters starting ``z6Mk``.
* **did:key** (W3C CCG did:key method): ``did:key:<multikey>``. The DID document is
  *derived* from the identifier itself, so resolving one needs no network and no
  resolver: :func:`resolve_verification_method` and :func:`did_document`.

Keiko only issues and accepts Ed25519 ``did:key`` verification methods of the form
``did:key:<mk>#<mk>`` (the one key of the document).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import base58

from services.kit.errors import ValidationError

MULTIBASE_BASE58BTC = "z"
ED25519_PUB_CODEC = b"\xed\x01"
ED25519_PRIV_CODEC = b"\x80\x26"
ED25519_KEY_BYTES = 32
DID_KEY_PREFIX = "did:key:"
MULTIKEY_TYPE = "Multikey"
DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
MAX_MULTIBASE_CHARS = 200


def multibase_encode(data: bytes) -> str:
    """``z`` + base58btc of ``data``."""
    return MULTIBASE_BASE58BTC + base58.b58encode(bytes(data)).decode("ascii")


def multibase_decode(value: object, field: str) -> bytes:
    """The bytes of a base58btc multibase string (``ValidationError`` otherwise)."""
    if not isinstance(value, str) or not value.startswith(MULTIBASE_BASE58BTC):
        raise ValidationError(field, "must be a base58btc multibase string (z...)")
    if len(value) > MAX_MULTIBASE_CHARS:
        raise ValidationError(field, f"at most {MAX_MULTIBASE_CHARS} characters")
    try:
        return base58.b58decode(value[1:].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValidationError(field, "is not valid base58btc") from None


def public_key_multibase(public_key: bytes) -> str:
    """The Multikey value of an Ed25519 public key (``z6Mk...``)."""
    if len(public_key) != ED25519_KEY_BYTES:
        raise ValidationError("public_key", f"must be {ED25519_KEY_BYTES} bytes")
    return multibase_encode(ED25519_PUB_CODEC + bytes(public_key))


def public_key_from_multibase(value: object, field: str) -> bytes:
    """The 32 Ed25519 key bytes of a Multikey value."""
    raw = multibase_decode(value, field)
    if not raw.startswith(ED25519_PUB_CODEC) or len(raw) != 2 + ED25519_KEY_BYTES:
        raise ValidationError(field, "is not an Ed25519 public key (multicodec ed25519-pub)")
    return raw[2:]


def private_key_from_multibase(value: object, field: str) -> bytes:
    """The 32-byte Ed25519 seed of a multibase ``ed25519-priv`` value (test keys only)."""
    raw = multibase_decode(value, field)
    if not raw.startswith(ED25519_PRIV_CODEC) or len(raw) != 2 + ED25519_KEY_BYTES:
        raise ValidationError(field, "is not an Ed25519 private key (multicodec ed25519-priv)")
    return raw[2:]


def did_key(public_key: bytes) -> str:
    """``did:key:z6Mk...`` of an Ed25519 public key."""
    return DID_KEY_PREFIX + public_key_multibase(public_key)


def verification_method_id(public_key: bytes) -> str:
    """``did:key:<mk>#<mk>``: the key's verification method in its own DID document."""
    multikey = public_key_multibase(public_key)
    return f"{DID_KEY_PREFIX}{multikey}#{multikey}"


def public_key_from_did(did: object, field: str) -> bytes:
    """The Ed25519 key of a ``did:key`` DID (no fragment)."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise ValidationError(field, "must be a did:key DID")
    return public_key_from_multibase(did[len(DID_KEY_PREFIX) :], field)


@dataclass(frozen=True, slots=True)
class VerificationMethod:
    """A resolved verification method: its id, the DID that controls it, and the key."""

    id: str
    controller: str
    public_key: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": MULTIKEY_TYPE,
            "controller": self.controller,
            "publicKeyMultibase": public_key_multibase(self.public_key),
        }


def resolve_verification_method(
    url: object, field: str = "verificationMethod"
) -> VerificationMethod:
    """Resolve ``did:key:<mk>#<mk>`` offline. Any other method or a fragment that is not
    the document's key is refused with a ``ValidationError`` naming ``field``."""
    if not isinstance(url, str) or not url.startswith(DID_KEY_PREFIX):
        raise ValidationError(field, "only did:key verification methods resolve offline")
    did, sep, fragment = url.partition("#")
    public_key = public_key_from_did(did, field)
    if not sep or fragment != did[len(DID_KEY_PREFIX) :]:
        raise ValidationError(field, "must be did:key:<key>#<key>, the DID's only key")
    return VerificationMethod(url, did, public_key)


def did_document(did: str) -> dict[str, Any]:
    """The DID document a ``did:key`` resolves to (Multikey representation)."""
    public_key = public_key_from_did(did, "did")
    method = VerificationMethod(verification_method_id(public_key), did, public_key)
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [method.to_json()],
        "authentication": [method.id],
        "assertionMethod": [method.id],
        "capabilityDelegation": [method.id],
        "capabilityInvocation": [method.id],
    }


__all__ = [
    "VerificationMethod",
    "did_document",
    "did_key",
    "multibase_decode",
    "multibase_encode",
    "private_key_from_multibase",
    "public_key_from_did",
    "public_key_from_multibase",
    "public_key_multibase",
    "resolve_verification_method",
    "verification_method_id",
]
