"""Ratings: who and what is rated (subjects, roles), the rating record, its weight as it
ages (`decay_weight`: a rating counts for RATING_TTL with a cosine taper) and the
validation of a new rating (`validate_rating`). docs/reputation.md explains every constant."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from services.kit.errors import ValidationError
from services.kit.paging import OffsetPageTokens
from services.reputation.domain.manipulation import Flag

# A rating counts in the current score for 30 days, with a cosine taper from 1 to 0.
RATING_TTL = timedelta(days=30)
# Both sides may rate for 7 days after the exchange completed; ratings stay blind until
# both have rated or this window closes.
RATING_WINDOW = timedelta(days=7)
MAX_COMMENT = 2000
MAX_ID = 64
MAX_REQUEST_ID = 128
MAX_REASON = 1000
MAX_NOTE = 2000
RATING_TTL_S = RATING_TTL.total_seconds()


class SubjectKind(enum.StrEnum):
    SESSION = "session"
    INTERACTION = "interaction"


class Role(enum.StrEnum):
    """The part a participant played in an exchange; a rating's rater_role is the rater's."""

    STUDENT = "student"
    TUTOR = "tutor"

    @property
    def other(self) -> Role:
        return Role.TUTOR if self is Role.STUDENT else Role.STUDENT


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    id: str
    completed_at: datetime
    closes_at: datetime
    participants: Mapping[str, Role]

    def window_open(self, now: datetime) -> bool:
        return now < self.closes_at


@dataclass(frozen=True)
class Rating:
    id: str
    subject_kind: SubjectKind
    subject_id: str
    rater_id: str
    rated_id: str
    rater_role: Role
    score: int
    comment: str
    created_at: datetime
    expires_at: datetime
    # When both sides had rated (set then, or by the sweeper once the window closed).
    revealed_at: datetime | None
    # The rating window of the subject: past it the rating is visible whatever happened.
    closes_at: datetime
    rater_weight: float
    request_id: str | None
    digest: str
    flag: Flag | None = None

    def revealed(self, now: datetime) -> bool:
        return self.revealed_at is not None or now >= self.closes_at

    @property
    def excluded(self) -> bool:
        return self.flag is not None and self.flag.excludes

    def weight(self, now: datetime) -> float:
        """Weight in the current score now: 0 when flagged, else decay x rater weight."""
        if self.excluded:
            return 0.0
        return decay_weight(now - self.created_at) * self.rater_weight


def decay_weight(age: timedelta) -> float:
    """Raised-cosine taper: 1 at age 0, 0.5 at 15 days, 0 from 30 days on.

    Flat near 0 (a day-old rating is almost as fresh as a new one) and flat near 30 days
    (a rating fades out instead of dropping off a cliff, so an expiry never jumps a score).
    """
    seconds = age.total_seconds()
    if seconds <= 0:
        return 1.0
    if seconds >= RATING_TTL_S:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * seconds / RATING_TTL_S))


def decay_weights(age_seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`decay_weight` over an array of ages in seconds."""
    clipped = np.clip(age_seconds, 0.0, RATING_TTL_S)
    return 0.5 * (1.0 + np.cos(np.pi * clipped / RATING_TTL_S))


@dataclass(frozen=True)
class RatingInput:
    rated_id: str
    rater_role: Role | None
    subject_kind: SubjectKind | None
    subject_id: str
    score: int
    comment: str
    request_id: str


@dataclass(frozen=True)
class ValidRating:
    rated_id: str
    rater_role: Role
    subject_kind: SubjectKind
    subject_id: str
    score: int
    comment: str
    request_id: str | None


def validate_rating(data: RatingInput) -> ValidRating:
    """Every field checked, first failure raised with its field path."""
    rated_id = data.rated_id.strip()
    if not rated_id:
        raise ValidationError("rated_id", "is required")
    if len(rated_id) > MAX_ID:
        raise ValidationError("rated_id", f"must be at most {MAX_ID} characters")
    if data.rater_role is None:
        raise ValidationError("rater_role", "must be STUDENT or TUTOR")
    if data.subject_kind is None or not data.subject_id.strip():
        raise ValidationError("subject", "one of interaction_id or session_id is required")
    subject_field = f"{data.subject_kind}_id"
    subject_id = data.subject_id.strip()
    if len(subject_id) > MAX_ID:
        raise ValidationError(subject_field, f"must be at most {MAX_ID} characters")
    if not 1 <= data.score <= 5:
        raise ValidationError("score", "must be between 1 and 5")
    comment = data.comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationError("comment", f"must be at most {MAX_COMMENT} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in comment):
        raise ValidationError("comment", "must not contain control characters")
    request_id = data.request_id.strip()
    if len(request_id) > MAX_REQUEST_ID:
        raise ValidationError("request_id", f"must be at most {MAX_REQUEST_ID} characters")
    return ValidRating(
        rated_id=rated_id,
        rater_role=data.rater_role,
        subject_kind=data.subject_kind,
        subject_id=subject_id,
        score=data.score,
        comment=comment,
        request_id=request_id or None,
    )


def validate_text(value: str, field_path: str, maximum: int, *, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise ValidationError(field_path, "is required")
    if len(text) > maximum:
        raise ValidationError(field_path, f"must be at most {maximum} characters")
    return text


def validate_id(value: str, field_path: str) -> str:
    return validate_text(value, field_path, MAX_ID, required=True)


# Offset page tokens of reputation's lists.
PAGE_TOKENS = OffsetPageTokens("o")
