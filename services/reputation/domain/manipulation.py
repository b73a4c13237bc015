"""Manipulation detection: rating rings, bursts, clusters of new raters and ratings between
two accounts of one human (`detect`), and the flags they raise for review."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Scores >= this are "high" for ring detection.
HIGH_SCORE = 4
# Manipulation windows and thresholds.
DETECTION_WINDOW = timedelta(days=30)
RING_MIN_MUTUAL = 3  # high ratings each way between one pair in the window
RING_CONCENTRATION = 0.5  # ... making up at least this share of the rated user's ratings
BURST_WINDOW = timedelta(hours=1)
BURST_THRESHOLD = 5  # ratings received within BURST_WINDOW (this one included)
NEW_RATER_CLUSTER_WINDOW = timedelta(days=7)
NEW_RATER_CLUSTER_THRESHOLD = 3  # high ratings from raters with no history in the window


class FlagReason(enum.StrEnum):
    RATING_RING = "rating_ring"
    BURST = "burst"
    SELF_DEALING = "self_dealing"
    REPORTED = "reported"


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    UPHELD = "upheld"


class Decision(enum.StrEnum):
    DISMISS = "dismiss"
    UPHOLD = "uphold"


@dataclass(frozen=True)
class Flag:
    rating_id: str
    reasons: tuple[FlagReason, ...]
    details: str
    flagged_at: datetime
    status: ReviewStatus
    reviewer_id: str = ""
    review_note: str = ""
    reviewed_at: datetime | None = None

    @property
    def excludes(self) -> bool:
        """Open and upheld flags keep the rating out of every score; dismissed ones do not."""
        return self.status is not ReviewStatus.DISMISSED


@dataclass(frozen=True)
class Edge:
    """One rating reduced to what the rules look at."""

    rating_id: str
    rater_id: str
    rated_id: str
    score: int
    created_at: datetime
    subject_id: str
    new_rater: bool = False


@dataclass
class Findings:
    """Ratings to flag: rating id -> reasons and a line of evidence per reason."""

    reasons: dict[str, set[FlagReason]] = field(default_factory=lambda: defaultdict(set))
    details: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, rating_id: str, reason: FlagReason, detail: str) -> None:
        if reason not in self.reasons[rating_id]:
            self.reasons[rating_id].add(reason)
            self.details[rating_id].append(detail)

    def __bool__(self) -> bool:
        return bool(self.reasons)


def detect(
    new: Edge,
    recent: Sequence[Edge],
    commitments: Mapping[str, str],
    now: datetime,
) -> Findings:
    """Apply every rule to a new rating, given the ratings of the last DETECTION_WINDOW that
    involve its rater or rated user (the new one excluded) and the humanity commitments
    known for those users. Earlier ratings that a rule implicates are flagged too."""
    found = Findings()
    since = now - DETECTION_WINDOW
    edges = [e for e in recent if e.created_at >= since and e.rating_id != new.rating_id]
    edges.append(new)
    _rings(new, edges, found)
    _burst(new, edges, found)
    _new_rater_cluster(new, edges, found, now)
    _same_human(new, edges, commitments, found)
    return found


def _high(edges: Iterable[Edge], rater: str, rated: str) -> list[Edge]:
    return [
        e for e in edges if e.rater_id == rater and e.rated_id == rated and e.score >= HIGH_SCORE
    ]


def _rings(new: Edge, edges: Sequence[Edge], found: Findings) -> None:
    if new.score < HIGH_SCORE:
        return
    a, b = new.rater_id, new.rated_id
    # 1. A reciprocal pair: repeatedly high both ways, and most of b's praise.
    forward, backward = _high(edges, a, b), _high(edges, b, a)
    received_b = [e for e in edges if e.rated_id == b]
    if (
        len(forward) >= RING_MIN_MUTUAL
        and len(backward) >= RING_MIN_MUTUAL
        and len(forward) >= RING_CONCENTRATION * len(received_b)
    ):
        detail = (
            f"reciprocal ring: {a} and {b} rated each other >= {HIGH_SCORE} "
            f"{len(forward)} and {len(backward)} times in {DETECTION_WINDOW.days} days"
        )
        for e in forward + backward:
            found.add(e.rating_id, FlagReason.RATING_RING, detail)
    # 2. A clique: a and b rate each other high, and both do so with a third account c.
    if not backward:
        return

    high_pairs = {(e.rater_id, e.rated_id) for e in edges if e.score >= HIGH_SCORE}

    def mutual(x: str, y: str) -> bool:
        return (x, y) in high_pairs and (y, x) in high_pairs

    users = {e.rater_id for e in edges} | {e.rated_id for e in edges}
    for c in sorted(users - {a, b}):
        if mutual(a, c) and mutual(b, c):
            members = sorted({a, b, c})
            detail = f"clique: {', '.join(members)} all rated each other >= {HIGH_SCORE}"
            for e in edges:
                if e.rater_id in members and e.rated_id in members and e.score >= HIGH_SCORE:
                    found.add(e.rating_id, FlagReason.RATING_RING, detail)


def _burst(new: Edge, edges: Sequence[Edge], found: Findings) -> None:
    start = new.created_at - BURST_WINDOW
    window = [e for e in edges if e.rated_id == new.rated_id and start <= e.created_at]
    if len(window) >= BURST_THRESHOLD:
        detail = (
            f"burst: {len(window)} ratings for {new.rated_id} within "
            f"{int(BURST_WINDOW.total_seconds() // 60)} minutes"
        )
        for e in window:
            found.add(e.rating_id, FlagReason.BURST, detail)


def _new_rater_cluster(new: Edge, edges: Sequence[Edge], found: Findings, now: datetime) -> None:
    """Sock puppets are fresh accounts: several high ratings for one user from raters with
    no history is self-dealing (a single new rater only weighs less)."""
    if not new.new_rater or new.score < HIGH_SCORE:
        return
    start = now - NEW_RATER_CLUSTER_WINDOW
    cluster = [
        e
        for e in edges
        if e.rated_id == new.rated_id
        and e.new_rater
        and e.score >= HIGH_SCORE
        and e.created_at >= start
    ]
    if len(cluster) >= NEW_RATER_CLUSTER_THRESHOLD:
        raters = ", ".join(sorted({e.rater_id for e in cluster}))
        detail = (
            f"new-account cluster: {len(cluster)} high ratings for {new.rated_id} from raters "
            f"with no history within {NEW_RATER_CLUSTER_WINDOW.days} days ({raters})"
        )
        for e in cluster:
            found.add(e.rating_id, FlagReason.SELF_DEALING, detail)


def _same_human(
    new: Edge, edges: Sequence[Edge], commitments: Mapping[str, str], found: Findings
) -> None:
    mine = commitments.get(new.rater_id)
    if not mine:
        return
    if commitments.get(new.rated_id) == mine:
        found.add(
            new.rating_id,
            FlagReason.SELF_DEALING,
            f"same human: rater {new.rater_id} and rated {new.rated_id} share a humanity proof",
        )
        return
    twins = [
        e
        for e in edges
        if e.rated_id == new.rated_id
        and e.rater_id != new.rater_id
        and commitments.get(e.rater_id) == mine
    ]
    if twins:
        accounts = sorted({new.rater_id, *(e.rater_id for e in twins)})
        detail = f"several accounts of one human rated {new.rated_id}: {', '.join(accounts)}"
        # The earliest rating of that human stands; the later accounts' are flagged.
        first = min([new, *twins], key=lambda e: (e.created_at, e.rating_id))
        for e in [new, *twins]:
            if e.rating_id != first.rating_id:
                found.add(e.rating_id, FlagReason.SELF_DEALING, detail)
