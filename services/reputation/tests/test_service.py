"""The reputation service on a real database (SQLite, and PostgreSQL with
KEIKO_TEST_BACKEND=real): authorization of every write, the blind, decay and expiry on a
fixed clock, each manipulation rule end to end, reviews, idempotency and concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.kit.clock import FixedClock
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.reputation.domain import (
    NEW_RATER_WEIGHT,
    Decision,
    FlagReason,
    ReviewStatus,
    Role,
    decay_weight,
    smoothed,
)
from services.reputation.service import (
    TOPIC_RATING_FLAGGED,
    TOPIC_RATING_REVEALED,
    TOPIC_REPUTATION_UPDATED,
    ReputationService,
    can_see,
    withheld,
)
from services.reputation.storage import outbox, ratings, subjects
from services.reputation.tests.conftest import (
    ADMIN,
    complete_session,
    consume,
    rate,
    rated_session,
    session_event,
    user,
    verify_human,
)

DAY = timedelta(days=1)


async def events(service: ReputationService, topic: str) -> list[dict]:
    async with service.db.session() as s:
        rows = await s.execute(select(outbox.c.payload).where(outbox.c.topic == topic))
        return [r.payload for r in rows]


async def seasoned(service: ReputationService, *users: str) -> None:
    """Give users some history so the new-rater rule stays out of the way."""
    for u in users:
        await complete_session(service, f"{u}-old-tutor", u)


# -- rating windows ---------------------------------------------------------------------------


async def test_session_completed_event_opens_a_window_once(service: ReputationService) -> None:
    event = session_event("tutor", "ana", service.clock.now(), "sess-x")
    assert await consume(service, event)
    assert not await consume(service, event)  # redelivery: handled once
    async with service.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(subjects))).scalar_one() == 1


async def test_malformed_session_event_is_skipped(service: ReputationService) -> None:
    event = session_event("same", "same", service.clock.now())
    assert await consume(service, event)
    with pytest.raises(NotFound):
        await rate(service, "same", "x", Role.STUDENT, str(event.payload["session_id"]))


async def test_a_session_the_student_did_not_agree_to_opens_no_window(
    service: ReputationService,
) -> None:
    """Issue 9: an organizer cannot rate someone they booked without consent. The
    marketplace completes sessions only with the student's consent and says so in the
    event; an event that does not state it (or states a refusal) is skipped."""
    for consent in (None, "pending", "declined"):
        event = session_event("owner", "ana", service.clock.now(), student_consent=consent)
        assert await consume(service, event)
        with pytest.raises(NotFound):
            await rate(service, "owner", "ana", Role.TUTOR, str(event.payload["session_id"]))
    for consent in ("self", "accepted"):
        event = session_event("owner", "ana", service.clock.now(), student_consent=consent)
        assert await consume(service, event)
        rating = await rate(service, "owner", "ana", Role.TUTOR, str(event.payload["session_id"]))
        assert rating.rated_id == "ana"


# -- authorization of SubmitRating ------------------------------------------------------------


async def test_submit_authorization(service: ReputationService, clock: FixedClock) -> None:
    sid = await complete_session(service, "tutor", "ana")
    with pytest.raises(PermissionDenied, match="you cannot rate yourself"):
        await rate(service, "ana", "ana", Role.STUDENT, sid)
    with pytest.raises(PermissionDenied, match=f"you did not take part in session {sid}"):
        await rate(service, "mallory", "tutor", Role.STUDENT, sid)
    with pytest.raises(PermissionDenied, match="you took part in this session as student"):
        await rate(service, "ana", "tutor", Role.TUTOR, sid)
    with pytest.raises(ValidationError) as caught:
        await rate(service, "ana", "mallory", Role.STUDENT, sid)
    assert (caught.value.field, caught.value.reason) == (
        "rated_id",
        "is not the other participant of this session",
    )
    with pytest.raises(NotFound, match="session nope not found"):
        await rate(service, "ana", "tutor", Role.STUDENT, "nope")
    await rate(service, "ana", "tutor", Role.STUDENT, sid)
    with pytest.raises(AlreadyExists, match="you already rated this user for this session"):
        await rate(service, "ana", "tutor", Role.STUDENT, sid, 1)
    # The other direction is its own rating.
    await rate(service, "tutor", "ana", Role.TUTOR, sid)
    with pytest.raises(AlreadyExists):
        await rate(service, "tutor", "ana", Role.TUTOR, sid)


async def test_window_closes_after_seven_days(
    service: ReputationService, clock: FixedClock
) -> None:
    sid = await complete_session(service, "tutor", "ana")
    clock.advance(7 * DAY - timedelta(seconds=1))
    await rate(service, "ana", "tutor", Role.STUDENT, sid)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition, match="rating window of this session closed"):
        await rate(service, "tutor", "ana", Role.TUTOR, sid)


async def test_request_id_replays_return_the_original(service: ReputationService) -> None:
    sid = await complete_session(service, "tutor", "ana")
    first = await rate(service, "ana", "tutor", Role.STUDENT, sid, 4, request_id="req-1")
    again = await rate(service, "ana", "tutor", Role.STUDENT, sid, 4, request_id="req-1")
    assert again.id == first.id
    other = await complete_session(service, "tutor", "ana")
    with pytest.raises(AlreadyExists, match="request_id was already used"):
        await rate(service, "ana", "tutor", Role.STUDENT, other, request_id="req-1")


@pytest.mark.parametrize("with_request_id", [True, False])
async def test_twenty_concurrent_identical_submissions_count_once(
    service: ReputationService, with_request_id: bool
) -> None:
    sid = await complete_session(service, "tutor", "ana")
    kw = {"request_id": "same"} if with_request_id else {}
    results = await asyncio.gather(
        *(rate(service, "ana", "tutor", Role.STUDENT, sid, 5, **kw) for _ in range(20)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if with_request_id:
        assert not failed, failed
        assert len({r.id for r in ok}) == 1
    else:
        assert len(ok) == 1
        assert all(isinstance(e, AlreadyExists) for e in failed), failed
    async with service.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(ratings))).scalar_one() == 1


# -- the blind --------------------------------------------------------------------------------


async def test_double_blind_reveal_when_both_rate(service: ReputationService) -> None:
    await seasoned(service, "ana", "tutor")
    sid = await complete_session(service, "tutor", "ana")
    first = await rate(service, "ana", "tutor", Role.STUDENT, sid, 2)
    now = service.clock.now()
    # Hidden from the rated user and the public, not from the rater; no score moves.
    assert withheld(user("tutor"), first, now)
    assert not withheld(user("ana"), first, now)
    assert not can_see(user("stranger"), first, now)
    with pytest.raises(NotFound):
        await service.get_rating(user("stranger"), first.id)
    assert (await service.reputation("tutor")).total_ratings == 0
    assert await events(service, TOPIC_RATING_REVEALED) == []
    second = await rate(service, "tutor", "ana", Role.TUTOR, sid, 5)
    assert second.revealed(now)
    seen = await service.get_rating(user("stranger"), first.id)
    assert seen.revealed(now) and not withheld(user("tutor"), seen, now)
    assert (await service.reputation("tutor")).total_ratings == 1
    revealed = await events(service, TOPIC_RATING_REVEALED)
    assert {e["fields"]["rating_id"] for e in revealed} == {first.id, second.id}
    assert {e["digest"] for e in revealed} == {first.digest, second.digest}
    for e in revealed:
        assert e["domain"] == "reputation" and e["record_id"] == e["fields"]["rating_id"]
        assert hashlib.sha256(e["leaf_data"].encode()).hexdigest() == e["digest"]
        assert json.loads(e["leaf_data"]) == e["fields"]
    updated = await events(service, TOPIC_REPUTATION_UPDATED)
    assert {e["user_id"] for e in updated} == {"ana", "tutor"}


async def test_reveal_when_window_closes_unanswered(
    service: ReputationService, clock: FixedClock
) -> None:
    await seasoned(service, "ana")
    sid = await complete_session(service, "tutor", "ana")
    only = await rate(service, "ana", "tutor", Role.STUDENT, sid, 4)
    clock.advance(7 * DAY - timedelta(seconds=1))
    assert await service.reveal_due() == 0
    assert (await service.reputation("tutor")).total_ratings == 0
    clock.advance(timedelta(seconds=1))
    # Visible from the window's end even before the sweeper ran ...
    assert (await service.reputation("tutor")).total_ratings == 1
    # ... and the sweeper stamps and announces it.
    assert await service.reveal_due() == 1
    assert await service.reveal_due() == 0
    assert [e["fields"]["rating_id"] for e in await events(service, TOPIC_RATING_REVEALED)] == [
        only.id
    ]


async def test_list_ratings_respects_the_blind(service: ReputationService) -> None:
    await seasoned(service, "ana", "ben")
    sid = await complete_session(service, "tutor", "ana")
    await rate(service, "ana", "tutor", Role.STUDENT, sid, 3)
    await rated_session(service, "ben", "tutor", 5, 5)
    public = await service.list_ratings(
        user("stranger"),
        user_id="tutor",
        given=False,
        include_expired=False,
        requested_size=0,
        page_token="",
    )
    assert [r.rater_id for r in public.items] == ["ben"]
    mine = await service.list_ratings(
        user("tutor"),
        user_id="",
        given=False,
        include_expired=False,
        requested_size=1,
        page_token="",
    )
    assert len(mine.items) == 1 and mine.next_page_token
    rest = await service.list_ratings(
        user("tutor"),
        user_id="",
        given=False,
        include_expired=False,
        requested_size=1,
        page_token=mine.next_page_token,
    )
    assert {mine.items[0].rater_id, rest.items[0].rater_id} == {"ana", "ben"}
    with pytest.raises(ValidationError) as caught:
        await service.list_ratings(
            user("tutor"),
            user_id="",
            given=False,
            include_expired=False,
            requested_size=0,
            page_token="%%%",
        )
    assert (caught.value.field, caught.value.reason) == ("page_token", "malformed page token")


# -- decay and expiry -------------------------------------------------------------------------


@pytest.mark.parametrize("day", [0, 15, 29, 30, 31])
async def test_decay_and_expiry_on_a_fixed_clock(
    service: ReputationService, clock: FixedClock, day: int
) -> None:
    await seasoned(service, "ana", "tutor")
    start = clock.now()
    await rated_session(service, "ana", "tutor", 5, 4)
    clock.set(start + day * DAY)
    score = await service.reputation("tutor")
    w = decay_weight(day * DAY)
    assert score.total_ratings == 1
    assert score.historical_score == 5.0
    if day < 30:
        assert score.recent_ratings == 1
        assert score.current_score == pytest.approx(smoothed(5 * w, w))
        assert score.current_score > 3.5
    else:
        assert score.recent_ratings == 0
        assert score.current_score == 0.0
    student_role = next(r for r in score.role_scores if r.rater_role is Role.STUDENT)
    assert student_role.rating_count == (1 if day < 30 else 0)
    listed = await service.list_ratings(
        user("tutor"),
        user_id="",
        given=False,
        include_expired=False,
        requested_size=0,
        page_token="",
    )
    assert len(listed.items) == (1 if day < 30 else 0)
    if day < 30:
        assert listed.items[0].weight(clock.now()) == pytest.approx(w)
    with_expired = await service.list_ratings(
        user("tutor"),
        user_id="",
        given=False,
        include_expired=True,
        requested_size=0,
        page_token="",
    )
    assert len(with_expired.items) == 1


async def test_recompute_all_announces_what_decay_moved(
    service: ReputationService, clock: FixedClock
) -> None:
    await seasoned(service, "ana", "tutor")
    await rated_session(service, "ana", "tutor", 5, 4)
    before = len(await events(service, TOPIC_REPUTATION_UPDATED))
    assert await service.recompute_all() == 0  # just announced at the reveal
    clock.advance(10 * DAY)
    assert await service.recompute_all() == 2
    assert await service.recompute_all() == 0
    assert len(await events(service, TOPIC_REPUTATION_UPDATED)) == before + 2
    live = await service.reputation("tutor")
    announced = (await events(service, TOPIC_REPUTATION_UPDATED))[-1]
    assert announced["user_id"] in ("ana", "tutor")
    assert live.total_ratings == 1


# -- manipulation -----------------------------------------------------------------------------


async def flags_of(service: ReputationService, rating_id: str) -> set[FlagReason]:
    rating = await service.get_rating(ADMIN, rating_id)
    return set(rating.flag.reasons) if rating.flag else set()


async def test_new_rater_weighs_half(service: ReputationService) -> None:
    sid = await complete_session(service, "tutor", "fresh")
    rating = await rate(service, "fresh", "tutor", Role.STUDENT, sid)
    assert rating.rater_weight == NEW_RATER_WEIGHT
    await seasoned(service, "old")
    sid = await complete_session(service, "tutor", "old")
    assert (await rate(service, "old", "tutor", Role.STUDENT, sid)).rater_weight == 1.0


async def test_reciprocal_ring_is_flagged_and_excluded(
    service: ReputationService, clock: FixedClock
) -> None:
    await seasoned(service, "a", "b")
    ids = []
    for _ in range(3):
        first, second = await rated_session(service, "a", "b", 5, 5)
        assert second is not None
        ids += [first.id, second.id]
        clock.advance(2 * DAY)
    for rating_id in ids:
        assert FlagReason.RATING_RING in await flags_of(service, rating_id)
    assert (await service.reputation("b")).total_ratings == 0
    assert await events(service, TOPIC_RATING_FLAGGED)


async def test_clique_is_flagged(service: ReputationService, clock: FixedClock) -> None:
    await seasoned(service, "a", "b", "c")
    pairs = [("a", "b"), ("b", "c"), ("a", "c")]
    made = []
    for student, tutor in pairs:
        first, second = await rated_session(service, student, tutor, 5, 5)
        made += [first, second]
        clock.advance(DAY)
    for rating in made:
        assert rating is not None
        assert FlagReason.RATING_RING in await flags_of(service, rating.id)


async def test_burst_is_flagged(service: ReputationService, clock: FixedClock) -> None:
    students = [f"s{i}" for i in range(5)]
    await seasoned(service, *students)
    made = []
    for s in students:
        first, _ = await rated_session(service, s, "tutor", 4)
        made.append(first)
        clock.advance(timedelta(minutes=5))
    for rating in made:
        assert await flags_of(service, rating.id) == {FlagReason.BURST}


async def test_new_account_cluster_is_flagged(
    service: ReputationService, clock: FixedClock
) -> None:
    made = []
    for i in range(3):
        first, _ = await rated_session(service, f"puppet{i}", "tutor", 5)
        made.append(first)
        clock.advance(DAY)
    for rating in made:
        assert await flags_of(service, rating.id) == {FlagReason.SELF_DEALING}


async def test_same_human_behind_two_accounts(
    service: ReputationService, clock: FixedClock
) -> None:
    await seasoned(service, "alice", "alice2", "tutor", "bob")
    await verify_human(service, "alice", "c0ffee")
    await verify_human(service, "alice2", "c0ffee")
    await verify_human(service, "bob", "beef")
    first, _ = await rated_session(service, "alice", "tutor", 5)
    clock.advance(DAY)
    second, _ = await rated_session(service, "alice2", "tutor", 5)
    clock.advance(DAY)
    third, _ = await rated_session(service, "bob", "tutor", 5)
    assert await flags_of(service, first.id) == set()
    assert await flags_of(service, second.id) == {FlagReason.SELF_DEALING}
    assert await flags_of(service, third.id) == set()
    # An account rating another account of the same human (tutor is alice's too).
    await verify_human(service, "tutor", "c0ffee")
    clock.advance(DAY)
    sid = await complete_session(service, "tutor", "alice")
    own = await rate(service, "tutor", "alice", Role.TUTOR, sid)
    assert await flags_of(service, own.id) == {FlagReason.SELF_DEALING}


# -- reports and reviews ----------------------------------------------------------------------


async def test_report_and_review(service: ReputationService) -> None:
    await seasoned(service, "ana", "tutor")
    first, back = await rated_session(service, "ana", "tutor", 1, 5)
    assert back is not None
    assert (await service.reputation("tutor")).total_ratings == 1
    with pytest.raises(PermissionDenied, match="only the rated user may report"):
        await service.report(user("ana"), first.id, "mine")
    with pytest.raises(NotFound):
        await service.report(user("tutor"), "missing", "why")
    with pytest.raises(ValidationError) as caught:
        await service.report(user("tutor"), first.id, "  ")
    assert (caught.value.field, caught.value.reason) == ("reason", "is required")
    reported = await service.report(user("tutor"), first.id, "she never came")
    assert reported.flag is not None and reported.flag.reasons == (FlagReason.REPORTED,)
    again = await service.report(user("tutor"), first.id, "she never came")
    assert again.flag == reported.flag
    assert (await service.reputation("tutor")).total_ratings == 0
    # Admin only.
    with pytest.raises(PermissionDenied, match="admins only"):
        await service.list_flagged(user("tutor"), ReviewStatus.OPEN, 0, "")
    with pytest.raises(PermissionDenied, match="admins only"):
        await service.review(user("tutor"), first.id, Decision.DISMISS, "")
    page = await service.list_flagged(ADMIN, ReviewStatus.OPEN, 0, "")
    assert [r.id for r in page.items] == [first.id]
    with pytest.raises(ValidationError) as caught:
        await service.review(ADMIN, first.id, None, "")
    assert (caught.value.field, caught.value.reason) == ("decision", "must be DISMISS or UPHOLD")
    with pytest.raises(NotFound, match="rating is not flagged"):
        await service.review(ADMIN, back.id, Decision.DISMISS, "")
    dismissed = await service.review(ADMIN, first.id, Decision.DISMISS, "checked the log")
    assert dismissed.flag is not None and dismissed.flag.status is ReviewStatus.DISMISSED
    assert (await service.review(ADMIN, first.id, Decision.DISMISS, "")).flag == dismissed.flag
    with pytest.raises(FailedPrecondition, match="already reviewed"):
        await service.review(ADMIN, first.id, Decision.UPHOLD, "")
    assert (await service.reputation("tutor")).total_ratings == 1


async def test_upheld_rating_is_excluded_and_hidden(service: ReputationService) -> None:
    await seasoned(service, "ana", "tutor")
    first, _ = await rated_session(service, "ana", "tutor", 1, 5)
    await service.report(user("tutor"), first.id, "fake")
    await service.review(ADMIN, first.id, Decision.UPHOLD, "confirmed")
    assert (await service.reputation("tutor")).total_ratings == 0
    with pytest.raises(NotFound):
        await service.get_rating(user("stranger"), first.id)
    # Reporting again changes nothing.
    assert (await service.report(user("tutor"), first.id, "x")).flag.status is ReviewStatus.UPHELD  # type: ignore[union-attr]


async def test_report_before_reveal_is_refused(service: ReputationService) -> None:
    await seasoned(service, "ana")
    sid = await complete_session(service, "tutor", "ana")
    first = await rate(service, "ana", "tutor", Role.STUDENT, sid, 1)
    with pytest.raises(FailedPrecondition, match="not revealed yet"):
        await service.report(user("tutor"), first.id, "why")


# -- generic subjects and humanity events -----------------------------------------------------


async def test_interaction_subjects_are_rated_the_same_way(service: ReputationService) -> None:
    from services.reputation.domain import RatingInput, SubjectKind

    async with service.db.transaction() as s:
        assert await service.open_subject(
            s,
            kind=SubjectKind.INTERACTION,
            subject_id="int-1",
            participants={"tutor": Role.TUTOR, "ana": Role.STUDENT},
            completed_at=service.clock.now(),
        )
    with pytest.raises(ValidationError) as caught:
        async with service.db.transaction() as s:
            await service.open_subject(
                s,
                kind=SubjectKind.INTERACTION,
                subject_id="int-2",
                participants={"a": Role.TUTOR, "b": Role.TUTOR},
                completed_at=service.clock.now(),
            )
    assert caught.value.field == "participants"
    rating = await service.submit(
        user("ana"),
        RatingInput("tutor", Role.STUDENT, SubjectKind.INTERACTION, "int-1", 4, "", ""),
    )
    assert rating.subject_kind is SubjectKind.INTERACTION
    with pytest.raises(NotFound, match="interaction int-9 not found"):
        await service.submit(
            user("ana"),
            RatingInput("tutor", Role.STUDENT, SubjectKind.INTERACTION, "int-9", 4, "", ""),
        )


async def test_humanity_events_update_the_lookup(service: ReputationService) -> None:
    from services.kit.events import Event
    from services.reputation.service import TOPIC_USER_UPDATED

    await verify_human(service, "ana", "c0ffee")
    assert await service.humanity.commitments(["ana", "ben"]) == {"ana": "c0ffee"}
    profile_only = Event(TOPIC_USER_UPDATED, key="ana", payload={"user_id": "ana", "bio": "hi"})
    assert await consume(service, profile_only)
    assert await service.humanity.commitments(["ana"]) == {"ana": "c0ffee"}
    revoked = Event(
        TOPIC_USER_UPDATED, key="ana", payload={"user_id": "ana", "human_verified": False}
    )
    assert await consume(service, revoked)
    assert await service.humanity.commitments(["ana"]) == {}


async def test_vectorized_scan_matches_live_scores(
    service: ReputationService, clock: FixedClock
) -> None:
    from services.reputation.domain import compute_all_scores
    from services.reputation.storage import Repository

    await seasoned(service, "ana", "ben", "tutor")
    await rated_session(service, "ana", "tutor", 5, 3)  # revealed both ways
    clock.advance(3 * DAY)
    first, _ = await rated_session(service, "ben", "tutor", 2, 4)
    await service.report(user("tutor"), first.id, "unfair")  # excluded while open
    clock.advance(DAY)
    sid = await complete_session(service, "tutor", "ana")
    await rate(service, "ana", "tutor", Role.STUDENT, sid, 1)  # still blind
    for days in (0, 5, 27):
        clock.advance(days * DAY)
        now = clock.now()
        async with service.db.session() as s:
            fast = compute_all_scores(await Repository(s).rating_columns(now), now)
        for who in ("ana", "ben", "tutor"):
            live = await service.reputation(who)
            assert fast[who].same_values(live, tolerance=1e-9), (days, who, fast[who], live)
