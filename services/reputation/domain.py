"""Reputation rules with no I/O: validation, the decay curve, smoothed scores, blind reveal
and the manipulation rules. docs/reputation.md explains every constant.

Everything takes `now` explicitly (from a Clock); nothing here reads the system time.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from services.kit.errors import ValidationError
from services.kit.paging import OffsetPageTokens

# -- parameters (see docs/reputation.md) ------------------------------------------------------

# A rating counts in the current score for 30 days, with a cosine taper from 1 to 0.
RATING_TTL = timedelta(days=30)
# Both sides may rate for 7 days after the exchange completed; ratings stay blind until
# both have rated or this window closes.
RATING_WINDOW = timedelta(days=7)
# Bayesian smoothing: the current score starts from PRIOR_MEAN with PRIOR_WEIGHT
# pseudo-ratings of full weight, so a couple of 5s give ~4.1, not 5.0.
PRIOR_MEAN = 3.5
PRIOR_WEIGHT = 3.0
# A rater with no history (no earlier exchange, no earlier rating) weighs half.
NEW_RATER_WEIGHT = 0.5
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

MAX_COMMENT = 2000
MAX_ID = 64
MAX_REQUEST_ID = 128
MAX_REASON = 1000
MAX_NOTE = 2000

_TTL_S = RATING_TTL.total_seconds()


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


# -- values -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class RoleScore:
    rater_role: Role
    current_score: float
    rating_count: int


@dataclass(frozen=True)
class Score:
    user_id: str
    current_score: float
    historical_score: float
    total_ratings: int
    recent_ratings: int
    role_scores: tuple[RoleScore, ...]
    last_updated: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "current_score": self.current_score,
            "historical_score": self.historical_score,
            "total_ratings": self.total_ratings,
            "recent_ratings": self.recent_ratings,
            "role_scores": [
                {
                    "rater_role": str(r.rater_role),
                    "current_score": r.current_score,
                    "rating_count": r.rating_count,
                }
                for r in self.role_scores
            ],
            "last_updated": iso(self.last_updated),
        }

    @staticmethod
    def from_json(data: Mapping[str, object]) -> Score:
        roles = data.get("role_scores", [])
        assert isinstance(roles, list)
        return Score(
            user_id=str(data["user_id"]),
            current_score=float(data["current_score"]),  # type: ignore[arg-type]
            historical_score=float(data["historical_score"]),  # type: ignore[arg-type]
            total_ratings=int(data["total_ratings"]),  # type: ignore[call-overload]
            recent_ratings=int(data["recent_ratings"]),  # type: ignore[call-overload]
            role_scores=tuple(
                RoleScore(Role(r["rater_role"]), float(r["current_score"]), int(r["rating_count"]))
                for r in roles
            ),
            last_updated=parse_iso(str(data["last_updated"])),
        )

    def same_values(self, other: Score | None, tolerance: float = 0.005) -> bool:
        """Equal up to `tolerance` on the scores (decay moves them continuously)."""
        if other is None:
            return False
        if (self.total_ratings, self.recent_ratings) != (other.total_ratings, other.recent_ratings):
            return False
        pairs = [(self.current_score, other.current_score)]
        pairs.append((self.historical_score, other.historical_score))
        mine = {r.rater_role: r for r in self.role_scores}
        theirs = {r.rater_role: r for r in other.role_scores}
        if mine.keys() != theirs.keys():
            return False
        for role, r in mine.items():
            if r.rating_count != theirs[role].rating_count:
                return False
            pairs.append((r.current_score, theirs[role].current_score))
        return all(abs(a - b) <= tolerance for a, b in pairs)


# -- decay and scores -------------------------------------------------------------------------


def decay_weight(age: timedelta) -> float:
    """Raised-cosine taper: 1 at age 0, 0.5 at 15 days, 0 from 30 days on.

    Flat near 0 (a day-old rating is almost as fresh as a new one) and flat near 30 days
    (a rating fades out instead of dropping off a cliff, so an expiry never jumps a score).
    """
    seconds = age.total_seconds()
    if seconds <= 0:
        return 1.0
    if seconds >= _TTL_S:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * seconds / _TTL_S))


def decay_weights(age_seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`decay_weight` over an array of ages in seconds."""
    clipped = np.clip(age_seconds, 0.0, _TTL_S)
    return 0.5 * (1.0 + np.cos(np.pi * clipped / _TTL_S))


def smoothed(weighted_sum: float, weight_total: float) -> float:
    """Bayesian average toward PRIOR_MEAN; 0 when nothing counts (the proto's "none")."""
    if weight_total <= 0.0:
        return 0.0
    return (PRIOR_WEIGHT * PRIOR_MEAN + weighted_sum) / (PRIOR_WEIGHT + weight_total)


def compute_score(user_id: str, received: Iterable[Rating], now: datetime) -> Score:
    """A user's reputation from the ratings they received.

    Only revealed, non-excluded ratings count (an unrevealed rating moving a public score
    would leak it). Current: smoothed, decay-weighted, last 30 days. Historical: plain mean
    of every counted rating ever. Role scores: the current score split by the rater's role.
    """
    weighted = {Role.STUDENT: 0.0, Role.TUTOR: 0.0}
    weights = {Role.STUDENT: 0.0, Role.TUTOR: 0.0}
    recent = {Role.STUDENT: 0, Role.TUTOR: 0}
    total = 0
    score_sum = 0
    for rating in received:
        if rating.excluded or not rating.revealed(now):
            continue
        total += 1
        score_sum += rating.score
        age = now - rating.created_at
        if age < RATING_TTL:
            recent[rating.rater_role] += 1
            w = decay_weight(age) * rating.rater_weight
            weighted[rating.rater_role] += w * rating.score
            weights[rating.rater_role] += w
    return Score(
        user_id=user_id,
        current_score=smoothed(sum(weighted.values()), sum(weights.values())),
        historical_score=score_sum / total if total else 0.0,
        total_ratings=total,
        recent_ratings=sum(recent.values()),
        role_scores=tuple(
            RoleScore(role, smoothed(weighted[role], weights[role]), recent[role])
            for role in (Role.STUDENT, Role.TUTOR)
        ),
        last_updated=now,
    )


@dataclass(frozen=True)
class RatingColumns:
    """Ratings as columns, for recomputing every score at once (numpy)."""

    rated_id: Sequence[str]
    is_student_rater: npt.NDArray[np.bool_]
    score: npt.NDArray[np.float64]
    created_s: npt.NDArray[np.float64]  # epoch seconds
    counted: npt.NDArray[np.bool_]  # revealed and not excluded
    rater_weight: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> RatingColumns:
        none_f = np.empty(0, dtype=np.float64)
        none_b = np.empty(0, dtype=np.bool_)
        return RatingColumns([], none_b, none_f, none_f, none_b, none_f)


def compute_all_scores(columns: RatingColumns, now: datetime) -> dict[str, Score]:
    """`compute_score` for every rated user, vectorized: one pass of bincounts."""
    if len(columns.rated_id) == 0:
        return {}
    # Factorize user ids with a dict: far cheaper than sorting an object array.
    codes: dict[str, int] = {}
    idx = np.fromiter(
        (codes.setdefault(u, len(codes)) for u in columns.rated_id),
        dtype=np.int64,
        count=len(columns.rated_id),
    )
    users = list(codes)
    n = len(users)
    counted = columns.counted
    score = columns.score
    age = now.timestamp() - columns.created_s
    recent = counted & (age < _TTL_S)
    w = np.where(recent, decay_weights(age) * columns.rater_weight, 0.0)
    total = np.bincount(idx, weights=counted.astype(np.float64), minlength=n)
    score_sum = np.bincount(idx, weights=np.where(counted, score, 0.0), minlength=n)
    result: dict[str, Score] = {}
    per_role: dict[Role, tuple[npt.NDArray[Any], ...]] = {}
    for role, mask in (
        (Role.STUDENT, columns.is_student_rater),
        (Role.TUTOR, ~columns.is_student_rater),
    ):
        wr = np.where(mask, w, 0.0)
        per_role[role] = (
            np.bincount(idx, weights=wr * score, minlength=n),
            np.bincount(idx, weights=wr, minlength=n),
            np.bincount(idx, weights=(recent & mask).astype(np.float64), minlength=n),
        )
    ws_all = per_role[Role.STUDENT][0] + per_role[Role.TUTOR][0]
    w_all = per_role[Role.STUDENT][1] + per_role[Role.TUTOR][1]
    with np.errstate(divide="ignore", invalid="ignore"):
        current = np.where(
            w_all > 0, (PRIOR_WEIGHT * PRIOR_MEAN + ws_all) / (PRIOR_WEIGHT + w_all), 0.0
        )
        historical = np.where(total > 0, score_sum / np.maximum(total, 1), 0.0)
        role_current = {
            role: np.where(wt > 0, (PRIOR_WEIGHT * PRIOR_MEAN + ws) / (PRIOR_WEIGHT + wt), 0.0)
            for role, (ws, wt, _) in per_role.items()
        }
    # Plain lists: indexing numpy scalars one by one is what would make this loop slow.
    cur, hist, tot = current.tolist(), historical.tolist(), total.tolist()
    roles = (Role.STUDENT, Role.TUTOR)
    role_cur = {r: role_current[r].tolist() for r in roles}
    role_cnt = {r: per_role[r][2].tolist() for r in roles}
    for i, user in enumerate(users):
        result[user] = Score(
            user_id=user,
            current_score=cur[i],
            historical_score=hist[i],
            total_ratings=int(tot[i]),
            recent_ratings=int(role_cnt[Role.STUDENT][i] + role_cnt[Role.TUTOR][i]),
            role_scores=tuple(RoleScore(r, role_cur[r][i], int(role_cnt[r][i])) for r in roles),
            last_updated=now,
        )
    return result


def empty_score(user_id: str, now: datetime) -> Score:
    return compute_score(user_id, (), now)


# -- validation -------------------------------------------------------------------------------


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


# -- digest -----------------------------------------------------------------------------------


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


def as_utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; we only ever store UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# -- manipulation detection -------------------------------------------------------------------


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


# Offset page tokens of reputation's lists.
PAGE_TOKENS = OffsetPageTokens("o")
