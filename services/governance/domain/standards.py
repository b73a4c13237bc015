"""Community standards: a proposed change of a standards document
(`validate_standards_change`), its content hash and the adopted, versioned document."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.governance.domain.common import required_text
from services.kit.errors import ValidationError

MAX_DOCUMENT_CHARS = 200_000
MAX_CONTENT_TYPE_CHARS = 100


class StandardsKind(enum.StrEnum):
    COMMUNITY_STANDARDS = "community_standards"
    VALIDATION_RULES = "validation_rules"


@dataclass(frozen=True)
class StandardsChange:
    kind: StandardsKind
    content: str
    content_type: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "content": self.content, "content_type": self.content_type}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> StandardsChange:
        return StandardsChange(StandardsKind(data["kind"]), data["content"], data["content_type"])


def validate_standards_change(change: StandardsChange, path: str) -> StandardsChange:
    content = required_text(change.content, f"{path}.content", MAX_DOCUMENT_CHARS)
    content_type = required_text(
        change.content_type or "", f"{path}.content_type", MAX_CONTENT_TYPE_CHARS
    )
    if "/" not in content_type or " " in content_type:
        raise ValidationError(f"{path}.content_type", "must be a media type like text/markdown")
    if content_type == "application/json":
        try:
            json.loads(content)
        except ValueError as exc:
            raise ValidationError(f"{path}.content", "is not valid JSON") from exc
    return StandardsChange(change.kind, content, content_type)


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass(frozen=True)
class StandardsDocument:
    community_id: str
    kind: StandardsKind
    version: int
    content: str
    content_type: str
    content_hash: str
    proposal_id: str
    adopted_at: datetime
