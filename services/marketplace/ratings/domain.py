"""Space ratings: one per participant of a completed reservation, and the running summary
kept on the space. Plain types and rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.kit.errors import ValidationError

MAX_COMMENT = 2000

TOPIC_SPACE_RATED = "marketplace.space_rated"


@dataclass(frozen=True)
class RatingSummary:
    count: int = 0
    overall_sum: int = 0
    safety_sum: int = 0
    cleanliness_sum: int = 0
    accessibility_sum: int = 0

    def average(self, total: int) -> float:
        return round(total / self.count, 2) if self.count else 0.0


@dataclass(frozen=True)
class SpaceRating:
    id: str
    space_id: str
    rater_id: str
    reservation_id: str
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class RatingInput:
    space_id: str
    reservation_id: str
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str


def validate_rating_score(value: int, field_path: str) -> int:
    if not 1 <= value <= 5:
        raise ValidationError(field_path, "must be between 1 and 5")
    return value
