"""Verifiable Presentations with holder binding.

A share link can be fetched as a ``VerifiablePresentation`` whose ``holder`` is the
learner's ``did:key`` and whose proofs (purpose ``authentication``) the learner's key
makes over a ``challenge`` and a ``domain`` that the verifier chose: replaying the
presentation to another verifier, or with another challenge, fails. The presentation
embeds the learner's credentials, each with its own issuer proofs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain.credentials.documents import CREDENTIALS_V2, KEIKO_CREDENTIALS_V1
from chain.credentials.multikey import public_key_from_did
from services.kit.errors import ValidationError

VERIFIABLE_PRESENTATION = "VerifiablePresentation"
MAX_CREDENTIALS = 100
MAX_CHALLENGE_CHARS = 256
MAX_DOMAIN_CHARS = 253


def check_challenge(value: object, field: str = "challenge") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > MAX_CHALLENGE_CHARS:
        raise ValidationError(field, f"at most {MAX_CHALLENGE_CHARS} characters")
    return value


def check_domain(value: object, field: str = "domain") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > MAX_DOMAIN_CHARS:
        raise ValidationError(field, f"at most {MAX_DOMAIN_CHARS} characters")
    return value


def presentation(
    presentation_id: str, holder_did: str, credentials: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """An unsigned presentation of ``credentials`` by ``holder_did``."""
    public_key_from_did(holder_did, "holder")
    if len(credentials) > MAX_CREDENTIALS:
        raise ValidationError("verifiableCredential", f"at most {MAX_CREDENTIALS} credentials")
    return {
        "@context": [CREDENTIALS_V2, KEIKO_CREDENTIALS_V1],
        "id": presentation_id,
        "type": [VERIFIABLE_PRESENTATION],
        "holder": holder_did,
        "verifiableCredential": [dict(c) for c in credentials],
    }


@dataclass(frozen=True, slots=True)
class ParsedPresentation:
    holder: str
    credentials: tuple[Mapping[str, Any], ...]


def is_presentation(document: Mapping[str, Any]) -> bool:
    raw = document.get("type")
    types = raw if isinstance(raw, list) else [raw]
    return VERIFIABLE_PRESENTATION in types


def parse_presentation(document: Mapping[str, Any]) -> ParsedPresentation:
    if not is_presentation(document):
        raise ValidationError("type", f"must include {VERIFIABLE_PRESENTATION}")
    holder = document.get("holder")
    holder_id = holder.get("id") if isinstance(holder, Mapping) else holder
    if not isinstance(holder_id, str) or not holder_id:
        raise ValidationError("holder", "is required for holder binding")
    raw = document.get("verifiableCredential", [])
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_CREDENTIALS:
        raise ValidationError("verifiableCredential", f"at most {MAX_CREDENTIALS} credentials")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValidationError(f"verifiableCredential[{i}]", "must be an embedded credential")
    return ParsedPresentation(holder_id, tuple(items))


__all__ = [
    "MAX_CREDENTIALS",
    "VERIFIABLE_PRESENTATION",
    "ParsedPresentation",
    "check_challenge",
    "check_domain",
    "is_presentation",
    "parse_presentation",
    "presentation",
]
