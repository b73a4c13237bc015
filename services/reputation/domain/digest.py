"""The canonical, hashable form of a rating (`rating_digest`): what is anchored, and the
UTC timestamps it is written with."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from services.kit.clock import as_utc
from services.reputation.domain.ratings import Role, SubjectKind


def rating_digest(
    *,
    rating_id: str,
    subject_kind: SubjectKind,
    subject_id: str,
    rater_id: str,
    rated_id: str,
    rater_role: Role,
    score: int,
    comment: str,
    created_at: datetime,
) -> str:
    """SHA-256 (hex) of the canonical JSON of a rating (the comment by its own SHA-256):
    what the chain translator anchors. Recomputable by anyone holding the rating."""
    return hashlib.sha256(
        canonical_json(
            digest_fields(
                rating_id=rating_id,
                subject_kind=subject_kind,
                subject_id=subject_id,
                rater_id=rater_id,
                rated_id=rated_id,
                rater_role=rater_role,
                score=score,
                comment=comment,
                created_at=created_at,
            )
        )
    ).hexdigest()


def digest_fields(
    *,
    rating_id: str,
    subject_kind: SubjectKind,
    subject_id: str,
    rater_id: str,
    rated_id: str,
    rater_role: Role,
    score: int,
    comment: str,
    created_at: datetime,
) -> dict[str, object]:
    return {
        "v": 1,
        "rating_id": rating_id,
        "subject_kind": str(subject_kind),
        "subject_id": subject_id,
        "rater_id": rater_id,
        "rated_id": rated_id,
        "rater_role": str(rater_role),
        "score": score,
        "comment_sha256": hashlib.sha256(comment.encode()).hexdigest(),
        "created_at": iso(created_at),
    }


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def iso(when: datetime) -> str:
    return as_utc(when).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
