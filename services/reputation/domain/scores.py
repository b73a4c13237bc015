"""Scores: Bayesian smoothing and the current score per role (`compute_score`, and
`compute_all_scores` for every user at once). Everything takes `now` explicitly (from a Clock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from services.reputation.domain.digest import iso, parse_iso
from services.reputation.domain.ratings import (
    RATING_TTL,
    RATING_TTL_S,
    Rating,
    Role,
    decay_weight,
    decay_weights,
)

# Bayesian smoothing: the current score starts from PRIOR_MEAN with PRIOR_WEIGHT
# pseudo-ratings of full weight, so a couple of 5s give ~4.1, not 5.0.
PRIOR_MEAN = 3.5
PRIOR_WEIGHT = 3.0
# A rater with no history (no earlier exchange, no earlier rating) weighs half.
NEW_RATER_WEIGHT = 0.5


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
    recent = counted & (age < RATING_TTL_S)
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
