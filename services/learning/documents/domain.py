"""xAPI documents as plain types and rules. No I/O.

Sections cited are xAPI 1.0.3 Communication (IEEE 9274.1.1 keeps the same rules for 2.0
except where noted):

* 2.2 Documents: a document is arbitrary bytes with a content type, addressed by its
  context (State: activity + agent + optional registration; Activity Profile: activity;
  Agent Profile: agent) and an id (stateId / profileId).
* 2.2.s7/s8 JSON merge: a POST of an `application/json` object onto a stored
  `application/json` object sets each top-level property; anything else is 400 and
  nothing changes. A POST for a document not stored yet stores it as a PUT would.
* 3.1 Concurrency: the ETag is the SHA-1 hex of the content. If-Match (an ETag or "*")
  and If-None-Match ("*" or ETags) are honoured on PUT, POST and DELETE: a failed
  precondition is 412 and changes nothing. A PUT without either header on an existing
  document is 409 for the profiles; for State only under 2.0 (1.0.3 3.1.s3 lets State be
  replaced without headers; the 2.0 conformance suite requires 409 for all three).

Documents belong to an owner: the Keiko user behind the credentials (an LRS client acts
for its owner), so institutions never see each other's documents. Each document is at
most MAX_DOCUMENT_BYTES; an owner stores at most OWNER_QUOTA_BYTES and OWNER_MAX_DOCUMENTS.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.kit.errors import AlreadyExists, FailedPrecondition, ValidationError
from services.learning.xapi import XAPIVersion

MAX_DOCUMENT_BYTES = 1024 * 1024
OWNER_QUOTA_BYTES = 256 * 1024 * 1024
OWNER_MAX_DOCUMENTS = 100_000
MAX_DOCUMENT_ID = 255
MAX_CONTENT_TYPE = 255
JSON_TYPE = "application/json"
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class DocumentKind(StrEnum):
    STATE = "state"
    ACTIVITY_PROFILE = "activity_profile"
    AGENT_PROFILE = "agent_profile"

    @property
    def id_name(self) -> str:
        """The resource's name for the document id parameter."""
        return "stateId" if self is DocumentKind.STATE else "profileId"


@dataclass(frozen=True)
class DocumentKey:
    """A document's context and id, as validated from the request (agent as its key)."""

    owner_id: str
    kind: DocumentKind
    activity_id: str = ""
    agent_key: str = ""
    registration: str = ""
    document_id: str = ""

    @property
    def context_hash(self) -> str:
        """One fixed-size string for the context (its parts can be 2 KiB IRIs each)."""
        parts = [self.kind.value, self.activity_id, self.agent_key, self.registration]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentRecord:
    key: DocumentKey
    content: bytes
    content_type: str
    etag: str
    updated: datetime

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Preconditions:
    """If-Match / If-None-Match as sent (without quotes), empty when absent."""

    if_match: tuple[str, ...] = ()
    if_none_match: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.if_match or self.if_none_match)

    @staticmethod
    def parse(if_match: str, if_none_match: str) -> Preconditions:
        return Preconditions(_etags(if_match, "if_match"), _etags(if_none_match, "if_none_match"))


def _etags(header: str, field_name: str) -> tuple[str, ...]:
    """`"a", W/"b"` or `*` -> ("a", "b") / ("*",); a bare (unquoted) tag is accepted."""
    out = []
    for raw in header.split(","):
        tag = raw.strip()
        if not tag:
            continue
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if len(tag) > 128:
            raise ValidationError(field_name, "holds an entity tag longer than 128 characters")
        out.append(tag.lower())
    if len(out) > 32:
        raise ValidationError(field_name, "holds more than 32 entity tags")
    return tuple(out)


def etag_of(content: bytes) -> str:
    """xAPI Communication 3.1.s4.b2: the SHA-1 hex digest of the contents, lower case."""
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def check_preconditions(
    existing: DocumentRecord | None,
    pre: Preconditions,
    *,
    replacing: bool,
    requires_precondition: bool,
) -> None:
    """FailedPrecondition (412) when If-Match / If-None-Match fail; AlreadyExists (409) when
    `replacing` an existing document without either header where one is required."""
    if pre.if_match:
        if existing is None:
            raise FailedPrecondition("If-Match: the document does not exist")
        if "*" not in pre.if_match and existing.etag not in pre.if_match:
            raise FailedPrecondition(
                "If-Match: the document changed since that ETag; fetch it again"
            )
    if (
        pre.if_none_match
        and existing is not None
        and ("*" in pre.if_none_match or existing.etag in pre.if_none_match)
    ):
        raise FailedPrecondition("If-None-Match: the document already exists")
    if replacing and existing is not None and not pre.given and requires_precondition:
        raise AlreadyExists(
            "the document already exists: check its current state (GET) and send If-Match "
            "with its ETag to replace it, or If-None-Match: * to create only"
        )


def requires_precondition(kind: DocumentKind, version: XAPIVersion) -> bool:
    """Replacing needs If-Match/If-None-Match: profiles always, State under 2.0 only."""
    return kind is not DocumentKind.STATE or version is XAPIVersion.V2_0_0


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def merged_content(
    existing: DocumentRecord, content: bytes, content_type: str
) -> tuple[bytes, str]:
    """Communication 2.2.s7: the posted JSON object's top-level properties set on the
    stored one. ValidationError (400) unless both are `application/json` objects."""
    if base_type(existing.content_type) != JSON_TYPE or base_type(content_type) != JSON_TYPE:
        raise ValidationError(
            "content", "a POST merges only application/json documents into application/json"
        )
    stored = _json_object(existing.content, "stored document")
    posted = _json_object(content, "content")
    stored.update(posted)
    text = json.dumps(stored, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8"), existing.content_type


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(
            "content", f"the {what} is not JSON, so it cannot be merged"
        ) from None
    if not isinstance(value, dict):
        raise ValidationError("content", f"the {what} is not a JSON object, so it cannot be merged")
    return value


def check_content(content: bytes, content_type: str) -> str:
    """The content type to store; ValidationError for an unusable one."""
    if len(content_type) > MAX_CONTENT_TYPE:
        raise ValidationError("content_type", f"must be at most {MAX_CONTENT_TYPE} characters")
    text = content_type.strip() or DEFAULT_CONTENT_TYPE
    if "/" not in text or any(ord(c) < 32 for c in text):
        raise ValidationError("content_type", "must be a media type (type/subtype)")
    return text


def check_document_id(value: str, kind: DocumentKind, *, required: bool) -> str:
    name = kind.id_name
    if not value:
        if required:
            raise ValidationError(name, "is required")
        return ""
    if len(value) > MAX_DOCUMENT_ID:
        raise ValidationError(name, f"must be at most {MAX_DOCUMENT_ID} characters")
    if any(ord(c) < 32 for c in value):
        raise ValidationError(name, "must not contain control characters")
    return value
