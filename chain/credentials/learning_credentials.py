"""The two credentials Keiko issues, unsigned, and their parsed form.

* ``LearningRecordCredential`` (W3C VC Data Model 2.0): one passport entry, or a compact
  record of several, each a :class:`~chain.credentials.records.AnchoredRecord` in
  ``credentialSubject.learningRecord`` with its anchor in ``evidence``.
* ``OpenBadgeCredential`` (Open Badges 3.0): an achievement (a completed course, say)
  awarded to the learner, with the records that support it and their anchors as
  evidence. It names the OB 3.0 JSON Schema in ``credentialSchema``.

The issuer is a ``did:key`` (the signing key's) with a display name; the subject is the
learner's ``did:key``. Proofs are added by :mod:`chain.credentials.integrity` where the
key lives; status (``credentialStatus``) by :mod:`chain.credentials.status_list`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chain.credentials.documents import CREDENTIALS_V2, KEIKO_CREDENTIALS_V1, OPEN_BADGES_V3
from chain.credentials.integrity import format_datetime, is_datetime, parse_datetime
from chain.credentials.multikey import public_key_from_did
from chain.credentials.records import AnchoredRecord, parse_records, records_to_json
from chain.credentials.status_list import StatusEntry
from services.kit.errors import ValidationError

VERIFIABLE_CREDENTIAL = "VerifiableCredential"
LEARNING_RECORD_CREDENTIAL = "LearningRecordCredential"
OPEN_BADGE_CREDENTIAL = "OpenBadgeCredential"
OB_SCHEMA_ID = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)
OB_SCHEMA_TYPE = "1EdTechJsonSchemaValidator2019"
MAX_RECORDS = 500
MAX_TEXT_CHARS = 10_000  # as the gRPC limit of `description` (docs/limits.md)
ACHIEVEMENT_TYPES = ("Course", "Achievement", "Assessment", "Assignment", "Competency")


class CredentialKind(StrEnum):
    LEARNING_RECORD = "learning_record"
    OPEN_BADGE = "open_badge"


@dataclass(frozen=True, slots=True)
class Issuer:
    did: str
    name: str

    def to_json(self, *, open_badge: bool = False) -> dict[str, Any]:
        """The issuer object (an Open Badges ``Profile`` in a badge)."""
        if open_badge:
            return {"id": self.did, "type": ["Profile"], "name": self.name}
        return {"id": self.did, "name": self.name}


@dataclass(frozen=True, slots=True)
class Achievement:
    """An Open Badges ``Achievement`` (``achievement_type`` from the OB vocabulary)."""

    id: str
    name: str
    description: str
    criteria: str
    achievement_type: str = "Course"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": ["Achievement"],
            "achievementType": self.achievement_type,
            "name": self.name,
            "description": self.description,
            "criteria": {"narrative": self.criteria},
        }


def _check_text(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationError(field, f"at most {MAX_TEXT_CHARS} characters")
    return value


def _base(
    credential_id: str,
    types: list[str],
    contexts: list[str],
    issuer: Issuer,
    name: str,
    description: str,
    valid_from: datetime,
    status: StatusEntry | None,
) -> dict[str, Any]:
    public_key_from_did(issuer.did, "issuer.id")
    document: dict[str, Any] = {
        "@context": contexts,
        "id": credential_id,
        "type": [VERIFIABLE_CREDENTIAL, *types],
        "name": _check_text(name, "name"),
        "description": _check_text(description, "description"),
        "issuer": issuer.to_json(open_badge=OPEN_BADGE_CREDENTIAL in types),
        "validFrom": format_datetime(valid_from),
    }
    if status is not None:
        document["credentialStatus"] = status.to_json()
    return document


def learning_record_credential(
    credential_id: str,
    issuer: Issuer,
    subject_did: str,
    records: Sequence[AnchoredRecord],
    valid_from: datetime,
    *,
    name: str,
    description: str,
    status: StatusEntry | None = None,
) -> dict[str, Any]:
    """An unsigned ``LearningRecordCredential`` of ``records`` about ``subject_did``."""
    if len(records) > MAX_RECORDS:
        raise ValidationError("records", f"at most {MAX_RECORDS} records per credential")
    public_key_from_did(subject_did, "credentialSubject.id")
    learning, evidence = records_to_json(records)
    document = _base(
        credential_id,
        [LEARNING_RECORD_CREDENTIAL],
        [CREDENTIALS_V2, KEIKO_CREDENTIALS_V1],
        issuer,
        name,
        description,
        valid_from,
        status,
    )
    document["credentialSubject"] = {"id": subject_did, "learningRecord": learning}
    document["evidence"] = evidence
    return document


def open_badge_credential(
    credential_id: str,
    issuer: Issuer,
    subject_did: str,
    achievement: Achievement,
    records: Sequence[AnchoredRecord],
    valid_from: datetime,
    *,
    status: StatusEntry | None = None,
) -> dict[str, Any]:
    """An unsigned Open Badges 3.0 ``OpenBadgeCredential`` awarding ``achievement``."""
    if len(records) > MAX_RECORDS:
        raise ValidationError("records", f"at most {MAX_RECORDS} records per credential")
    if achievement.achievement_type not in ACHIEVEMENT_TYPES:
        raise ValidationError("achievement.achievementType", "is not a supported type")
    public_key_from_did(subject_did, "credentialSubject.id")
    learning, evidence = records_to_json(records, open_badge=True)
    document = _base(
        credential_id,
        [OPEN_BADGE_CREDENTIAL],
        [CREDENTIALS_V2, OPEN_BADGES_V3, KEIKO_CREDENTIALS_V1],
        issuer,
        _check_text(achievement.name, "achievement.name"),
        _check_text(achievement.description, "achievement.description"),
        valid_from,
        status,
    )
    _check_text(achievement.criteria, "achievement.criteria")
    document["credentialSubject"] = {
        "id": subject_did,
        "type": ["AchievementSubject"],
        "achievement": achievement.to_json(),
        "learningRecord": learning,
    }
    document["evidence"] = evidence
    document["credentialSchema"] = [{"id": OB_SCHEMA_ID, "type": OB_SCHEMA_TYPE}]
    return document


# -- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedCredential:
    """What a verifier reads from a Keiko credential (its proofs are checked apart)."""

    kind: CredentialKind
    id: str
    issuer: str
    subject: str
    valid_from: datetime | None
    valid_until: datetime | None
    status: StatusEntry | None
    records: tuple[AnchoredRecord, ...]


def _issuer_id(raw: object) -> str:
    value = raw.get("id") if isinstance(raw, Mapping) else raw
    if not isinstance(value, str) or not value:
        raise ValidationError("issuer", "must be a DID or an object with an id")
    return value


def credential_types(document: Mapping[str, Any]) -> list[str]:
    raw = document.get("type")
    types = raw if isinstance(raw, list) else [raw]
    return [t for t in types if isinstance(t, str)]


def parse_credential(document: Mapping[str, Any]) -> ParsedCredential:
    """The Keiko view of a credential document (``ValidationError`` naming the field)."""
    types = credential_types(document)
    if VERIFIABLE_CREDENTIAL not in types:
        raise ValidationError("type", f"must include {VERIFIABLE_CREDENTIAL}")
    if OPEN_BADGE_CREDENTIAL in types:
        kind = CredentialKind.OPEN_BADGE
    elif LEARNING_RECORD_CREDENTIAL in types:
        kind = CredentialKind.LEARNING_RECORD
    else:
        raise ValidationError("type", "is not a Keiko learning record or Open Badge credential")
    contexts = document.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != CREDENTIALS_V2:
        raise ValidationError("@context", f"must start with {CREDENTIALS_V2}")
    credential_id = document.get("id")
    if not isinstance(credential_id, str) or not credential_id:
        raise ValidationError("id", "is required")
    subject = document.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise ValidationError("credentialSubject", "must be one object")
    subject_id = subject.get("id")
    if not isinstance(subject_id, str) or not subject_id:
        raise ValidationError("credentialSubject.id", "is required")
    records = parse_records(subject.get("learningRecord"), document.get("evidence"))
    if len(records) > MAX_RECORDS:
        raise ValidationError("credentialSubject.learningRecord", f"at most {MAX_RECORDS}")
    status_raw = document.get("credentialStatus")
    return ParsedCredential(
        kind=kind,
        id=credential_id,
        issuer=_issuer_id(document.get("issuer")),
        subject=subject_id,
        valid_from=_optional_time(document, "validFrom"),
        valid_until=_optional_time(document, "validUntil"),
        status=None if status_raw is None else StatusEntry.parse(status_raw),
        records=tuple(records),
    )


def _optional_time(document: Mapping[str, Any], key: str) -> datetime | None:
    value = document.get(key)
    if value is None:
        return None
    if not is_datetime(value):
        raise ValidationError(key, "must be an XML Schema dateTime with a time zone")
    return parse_datetime(value, key)


__all__ = [
    "LEARNING_RECORD_CREDENTIAL",
    "OB_SCHEMA_ID",
    "OPEN_BADGE_CREDENTIAL",
    "VERIFIABLE_CREDENTIAL",
    "Achievement",
    "CredentialKind",
    "Issuer",
    "ParsedCredential",
    "credential_types",
    "learning_record_credential",
    "open_badge_credential",
    "parse_credential",
]
