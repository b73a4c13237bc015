"""Pure rules: the decay curve, smoothing, the vectorized recompute, validation, detection."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.kit.errors import ValidationError
from services.reputation.domain import (
    PRIOR_MEAN,
    PRIOR_WEIGHT,
    Edge,
    FlagReason,
    Rating,
    RatingColumns,
    RatingInput,
    Role,
    SubjectKind,
    compute_all_scores,
    compute_score,
    decay_weight,
    decay_weights,
    detect,
    rating_digest,
    smoothed,
    validate_rating,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(0, 1.0), (15, 0.5), (29, 0.5 * (1 + math.cos(math.pi * 29 / 30))), (30, 0.0), (31, 0.0)],
)
def test_decay_curve_at_day_0_15_29_30_31(days: int, expected: float) -> None:
    assert decay_weight(days * DAY) == pytest.approx(expected, abs=1e-12)
    assert decay_weights(np.array([days * 86400.0]))[0] == pytest.approx(expected, abs=1e-12)


def test_decay_is_monotonic_and_flat_at_both_ends() -> None:
    ages = [timedelta(hours=h) for h in range(0, 30 * 24 + 1)]
    weights = [decay_weight(a) for a in ages]
    assert all(a >= b for a, b in itertools.pairwise(weights))
    # Flat at the ends: the first and last day move the weight by < 0.3 %.
    assert 1 - decay_weight(DAY) < 0.003
    assert decay_weight(29 * DAY) < 0.003


def test_smoothing_two_fives_do_not_make_a_perfect_reputation() -> None:
    assert smoothed(10.0, 2.0) == pytest.approx((PRIOR_WEIGHT * PRIOR_MEAN + 10) / 5)
    assert smoothed(10.0, 2.0) == pytest.approx(4.1)
    assert smoothed(0.0, 0.0) == 0.0
    # Many fives approach 5.
    assert smoothed(500.0, 100.0) > 4.9


def _rating(i: int, rated: str, role: Role, score: int, created: datetime, **kw: object) -> Rating:
    data: dict[str, object] = {
        "id": f"r{i}",
        "subject_kind": SubjectKind.SESSION,
        "subject_id": f"s{i}",
        "rater_id": f"u{i}",
        "rated_id": rated,
        "rater_role": role,
        "score": score,
        "comment": "",
        "created_at": created,
        "expires_at": created + 30 * DAY,
        "revealed_at": created,
        "closes_at": created + 7 * DAY,
        "rater_weight": 1.0,
        "request_id": None,
        "digest": "",
    }
    data.update(kw)
    return Rating(**data)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.booleans(),
            st.integers(1, 5),
            st.integers(0, 60 * 86400),
            st.booleans(),
            st.sampled_from([1.0, 0.5]),
        ),
        max_size=30,
    )
)
def test_vectorized_recompute_equals_per_user_computation(
    rows: list[tuple[str, bool, int, int, bool, float]],
) -> None:
    now = T0 + 60 * DAY
    ratings = [
        _rating(
            i,
            rated,
            Role.STUDENT if student else Role.TUTOR,
            score,
            now - timedelta(seconds=age),
            revealed_at=now - timedelta(seconds=age) if revealed else None,
            closes_at=now + DAY,
            rater_weight=weight,
        )
        for i, (rated, student, score, age, revealed, weight) in enumerate(rows)
    ]
    columns = RatingColumns(
        rated_id=[r.rated_id for r in ratings],
        is_student_rater=np.array([r.rater_role is Role.STUDENT for r in ratings], dtype=bool),
        score=np.array([r.score for r in ratings], dtype=float),
        created_s=np.array([r.created_at.timestamp() for r in ratings], dtype=float),
        counted=np.array([r.revealed(now) for r in ratings], dtype=bool),
        rater_weight=np.array([r.rater_weight for r in ratings], dtype=float),
    )
    fast = compute_all_scores(columns, now)
    for user in {r.rated_id for r in ratings}:
        slow = compute_score(user, [r for r in ratings if r.rated_id == user], now)
        assert fast[user].same_values(slow, tolerance=1e-9), (fast[user], slow)


def test_score_counts_only_revealed_and_splits_roles() -> None:
    now = T0 + 10 * DAY
    ratings = [
        _rating(1, "t", Role.STUDENT, 5, now - DAY),
        _rating(2, "t", Role.TUTOR, 3, now - DAY),
        _rating(3, "t", Role.STUDENT, 1, now - DAY, revealed_at=None, closes_at=now + DAY),
        _rating(4, "t", Role.STUDENT, 2, now - 40 * DAY),  # expired: historical only
    ]
    score = compute_score("t", ratings, now)
    assert score.total_ratings == 3
    assert score.recent_ratings == 2
    assert score.historical_score == pytest.approx((5 + 3 + 2) / 3)
    by_role = {r.rater_role: r for r in score.role_scores}
    assert by_role[Role.STUDENT].rating_count == 1
    assert by_role[Role.TUTOR].rating_count == 1
    w = decay_weight(DAY)
    assert by_role[Role.STUDENT].current_score == pytest.approx(smoothed(5 * w, w))


def _valid(**overrides: object) -> RatingInput:
    data: dict[str, object] = {
        "rated_id": "t",
        "rater_role": Role.STUDENT,
        "subject_kind": SubjectKind.SESSION,
        "subject_id": "s1",
        "score": 4,
        "comment": "ok",
        "request_id": "",
    }
    data.update(overrides)
    return RatingInput(**data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"rated_id": " "}, "rated_id", "is required"),
        ({"rated_id": "x" * 65}, "rated_id", "must be at most 64 characters"),
        ({"rater_role": None}, "rater_role", "must be STUDENT or TUTOR"),
        ({"subject_kind": None}, "subject", "one of interaction_id or session_id is required"),
        ({"subject_id": "x" * 65}, "session_id", "must be at most 64 characters"),
        ({"score": 0}, "score", "must be between 1 and 5"),
        ({"score": 6}, "score", "must be between 1 and 5"),
        ({"comment": "x" * 2001}, "comment", "must be at most 2000 characters"),
        ({"comment": "a\x00b"}, "comment", "must not contain control characters"),
        ({"request_id": "r" * 129}, "request_id", "must be at most 128 characters"),
    ],
)
def test_validation_errors(overrides: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rating(_valid(**overrides))
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_digest_is_stable_and_covers_the_comment() -> None:
    kw: dict[str, object] = {
        "rating_id": "r1",
        "subject_kind": SubjectKind.SESSION,
        "subject_id": "s1",
        "rater_id": "a",
        "rated_id": "b",
        "rater_role": Role.STUDENT,
        "score": 5,
        "comment": "great",
        "created_at": T0,
    }
    first = rating_digest(**kw)  # type: ignore[arg-type]
    assert first == rating_digest(**kw)  # type: ignore[arg-type]
    assert first != rating_digest(**{**kw, "comment": "great!"})  # type: ignore[arg-type]
    assert len(first) == 64


def _edge(
    i: int, rater: str, rated: str, score: int = 5, at: datetime = T0, new: bool = False
) -> Edge:
    return Edge(f"e{i}", rater, rated, score, at, f"s{i}", new_rater=new)


def test_reciprocal_ring_needs_repetition_and_concentration() -> None:
    history = [_edge(i, "a", "b", at=T0 - DAY * (i + 1)) for i in range(2)] + [
        _edge(10 + i, "b", "a", at=T0 - DAY * (i + 1)) for i in range(3)
    ]
    found = detect(_edge(99, "a", "b"), history, {}, T0)
    assert FlagReason.RATING_RING in found.reasons["e99"]
    assert all(FlagReason.RATING_RING in found.reasons[f"e{i}"] for i in (0, 1, 10, 11, 12))
    # Same pair, but b has plenty of independent praise: not a ring.
    others = [_edge(100 + i, f"x{i}", "b", at=T0 - DAY * (i + 1)) for i in range(10)]
    assert not detect(_edge(99, "a", "b"), history + others, {}, T0).reasons.get("e99")
    # Twice each way is ordinary weekly tutoring.
    assert not detect(_edge(99, "a", "b"), history[:1] + history[2:4], {}, T0)


def test_clique_of_three_is_a_ring() -> None:
    history = [
        _edge(1, "b", "a"),
        _edge(2, "a", "c"),
        _edge(3, "c", "a"),
        _edge(4, "b", "c"),
        _edge(5, "c", "b"),
    ]
    found = detect(_edge(6, "a", "b"), history, {}, T0)
    assert {k for k, v in found.reasons.items() if FlagReason.RATING_RING in v} == {
        "e1",
        "e2",
        "e3",
        "e4",
        "e5",
        "e6",
    }


def test_burst_flags_the_whole_window() -> None:
    history = [_edge(i, f"u{i}", "t", 3, T0 - timedelta(minutes=10 * i)) for i in range(4)]
    found = detect(_edge(9, "u9", "t", 4, T0), history, {}, T0)
    assert {k for k, v in found.reasons.items() if FlagReason.BURST in v} == {
        "e0",
        "e1",
        "e2",
        "e3",
        "e9",
    }
    # The fifth rating an hour and a bit later is no burst.
    spread = [_edge(i, f"u{i}", "t", 3, T0 - timedelta(minutes=25 * i)) for i in range(4)]
    assert not detect(_edge(9, "u9", "t", 4, T0), spread, {}, T0)


def test_new_account_cluster_is_self_dealing() -> None:
    history = [_edge(i, f"n{i}", "t", 5, T0 - DAY * i, new=True) for i in range(2)]
    found = detect(_edge(9, "n9", "t", 5, T0, new=True), history, {}, T0)
    assert {k for k, v in found.reasons.items() if FlagReason.SELF_DEALING in v} == {
        "e0",
        "e1",
        "e9",
    }
    # One new rater alone only weighs less; it is not flagged.
    assert not detect(_edge(9, "n9", "t", 5, T0, new=True), [], {}, T0)


def test_same_human_rules() -> None:
    commitments = {"a": "h1", "b": "h1", "c": "h2", "a2": "h2"}
    found = detect(_edge(1, "a", "b"), [], commitments, T0)
    assert FlagReason.SELF_DEALING in found.reasons["e1"]
    # c and a2 are one human: the later account's rating of t is flagged, not the first.
    found = detect(_edge(2, "a2", "t", at=T0), [_edge(1, "c", "t", at=T0 - DAY)], commitments, T0)
    assert set(found.reasons) == {"e2"}
    assert not detect(_edge(3, "c", "t"), [], commitments, T0)
