"""The reputation service: rating windows from completed exchanges, blind ratings, scores,
manipulation flags and their review, and the events that announce all of it; one module
a capability: `subjects`, `ratings`, `scores`, `flags`, on `core`.

Authorization is per object: only a participant rates, only the other participant is
rated, once per direction; only the rated user reports; only admins see and review flags.
"""

from __future__ import annotations

from services.reputation.service.core import (
    CONSUMED_TOPICS,
    TOPIC_FLAG_REVIEWED,
    TOPIC_HUMANITY_VERIFIED,
    TOPIC_RATING_FLAGGED,
    TOPIC_RATING_REVEALED,
    TOPIC_REPUTATION_UPDATED,
    TOPIC_SESSION_COMPLETED,
    TOPIC_USER_UPDATED,
    HumanityLookup,
    StoredHumanityLookup,
)
from services.reputation.service.flags import Flags
from services.reputation.service.ratings import Ratings, can_see, withheld
from services.reputation.service.scores import Scores
from services.reputation.service.subjects import Subjects


class ReputationService(Subjects, Ratings, Scores, Flags):
    """Every reputation use case."""


__all__ = [
    "CONSUMED_TOPICS",
    "TOPIC_FLAG_REVIEWED",
    "TOPIC_HUMANITY_VERIFIED",
    "TOPIC_RATING_FLAGGED",
    "TOPIC_RATING_REVEALED",
    "TOPIC_REPUTATION_UPDATED",
    "TOPIC_SESSION_COMPLETED",
    "TOPIC_USER_UPDATED",
    "HumanityLookup",
    "ReputationService",
    "StoredHumanityLookup",
    "can_see",
    "withheld",
]
