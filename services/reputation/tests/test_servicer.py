"""The reputation servicer over real gRPC: status codes, field paths and reasons a client
gets, public scores, WatchReputation over the outbox -> bus -> fanout path, and the
composition factory with its background jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest

from services.api.keiko.reputation import v1 as pb
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.kit.testing import RecordingRuntime as FakeRuntime
from services.reputation.domain import SubjectKind
from services.reputation.service import ReputationService
from services.reputation.servicer import ReputationServicer, build_reputation_servicer
from services.reputation.storage import Repository, outbox
from services.reputation.tests.conftest import complete_session, session_event

Stub = pb.ReputationServiceStub
UPHOLD = pb.FlagDecision.from_string("UPHOLD")
DISMISS = pb.FlagDecision.from_string("DISMISS")
RECEIVED = pb.RatingDirection.from_string("RECEIVED")


@dataclass
class Harness:
    channel: grpc.aio.Channel
    issuer: TokenIssuer
    service: ReputationService
    relay: OutboxRelay

    def client(self, user_id: str | None = None, *roles: str) -> Stub:
        token = access_token(self.issuer, user_id, *roles) if user_id else None
        return stub(Stub, self.channel, access_token=token)


@pytest.fixture
async def harness(
    service: ReputationService, clock: FixedClock, event_bus: EventBus
) -> AsyncIterator[Harness]:
    issuer, verifier = token_pair(clock)
    fanout = EventFanout(event_bus, name="reputation-test")
    servicer = ReputationServicer(service, fanout)
    try:
        async with running_server([servicer], token_verifier=verifier) as channel:
            yield Harness(channel, issuer, service, OutboxRelay(service.db, outbox, event_bus))
    finally:
        await fanout.close()


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def submit(sid: str, rated: str = "tutor", **kw: Any) -> pb.SubmitRatingRequest:
    data: dict[str, Any] = {
        "rated_id": rated,
        "rater_role": pb.RaterRole.STUDENT,
        "session_id": sid,
        "score": 5,
        "comment": "clear and patient",
    }
    data.update(kw)
    return pb.SubmitRatingRequest(**data)


@pytest.mark.parametrize(
    ("overrides", "field_path", "reason"),
    [
        ({"rated_id": ""}, "rated_id", "is required"),
        ({"rater_role": pb.RaterRole.UNSPECIFIED}, "rater_role", "must be STUDENT or TUTOR"),
        ({"session_id": ""}, "subject", "one of interaction_id or session_id is required"),
        ({"score": 0}, "score", "must be between 1 and 5"),
        ({"score": 6}, "score", "must be between 1 and 5"),
        ({"comment": "x" * 2001}, "comment", "must be at most 2000 characters"),
        ({"request_id": "r" * 129}, "request_id", "must be at most 128 characters"),
        ({"session_id": "s" * 65}, "session_id", "must be at most 64 characters"),
    ],
)
async def test_bad_input_gets_invalid_argument_with_field(
    harness: Harness, overrides: dict[str, Any], field_path: str, reason: str
) -> None:
    sid = await complete_session(harness.service, "tutor", "ana")
    err = await rpc_error(harness.client("ana").submit_rating(submit(sid, **overrides)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == [(field_path, reason)]
    assert err.details() == f"{field_path}: {reason}"


async def test_write_authorization_codes(harness: Harness) -> None:
    sid = await complete_session(harness.service, "tutor", "ana")
    err = await rpc_error(harness.client().submit_rating(submit(sid)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await rpc_error(harness.client("ana").submit_rating(submit(sid, rated="ana")))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "you cannot rate yourself",
    )
    err = await rpc_error(harness.client("eve").submit_rating(submit(sid)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(harness.client("ana").submit_rating(submit("unknown")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    first = await harness.client("ana").submit_rating(submit(sid, request_id="r1"))
    assert first.rating.session_id == sid and first.rating.score == 5
    replay = await harness.client("ana").submit_rating(submit(sid, request_id="r1"))
    assert replay.rating.id == first.rating.id
    err = await rpc_error(harness.client("ana").submit_rating(submit(sid)))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "you already rated this user for this session",
    )
    clock = harness.service.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=8))
    err = await rpc_error(
        harness.client("tutor").submit_rating(
            submit(sid, rated="ana", rater_role=pb.RaterRole.TUTOR)
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Admin RPCs.
    err = await rpc_error(
        harness.client("ana").list_flagged_ratings(pb.ListFlaggedRatingsRequest())
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(
        harness.client("admin", "admin").review_flag(
            pb.ReviewFlagRequest(rating_id=first.rating.id)
        )
    )
    assert field_violations(err) == [("decision", "must be DISMISS or UPHOLD")]
    err = await rpc_error(
        harness.client("admin", "admin").review_flag(
            pb.ReviewFlagRequest(rating_id=first.rating.id, decision=UPHOLD)
        )
    )
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "rating is not flagged")


async def test_blind_over_grpc_and_report_flow(harness: Harness) -> None:
    sid = await complete_session(harness.service, "tutor", "ana")
    given = await harness.client("ana").submit_rating(submit(sid, score=2, comment="late"))
    rid = given.rating.id
    seen = await harness.client("tutor").get_rating(pb.GetRatingRequest(rating_id=rid))
    assert (seen.rating.revealed, seen.rating.score, seen.rating.comment) == (False, 0, "")
    err = await rpc_error(harness.client("eve").get_rating(pb.GetRatingRequest(rating_id=rid)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await rpc_error(
        harness.client("tutor").report_rating(pb.ReportRatingRequest(rating_id=rid, reason="x"))
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    await harness.client("tutor").submit_rating(
        submit(sid, rated="ana", rater_role=pb.RaterRole.TUTOR, score=4)
    )
    seen = await harness.client("tutor").get_rating(pb.GetRatingRequest(rating_id=rid))
    assert (seen.rating.revealed, seen.rating.score, seen.rating.comment) == (True, 2, "late")
    assert not seen.rating.flagged
    reported = await harness.client("tutor").report_rating(
        pb.ReportRatingRequest(rating_id=rid, reason="I was on time")
    )
    assert reported.flagged_rating.reasons == [pb.FlagReason.REPORTED]
    assert reported.flagged_rating.review_status == pb.ReviewStatus.OPEN
    listed = await harness.client("admin", "admin").list_flagged_ratings(
        pb.ListFlaggedRatingsRequest()
    )
    [flagged] = listed.flagged_ratings
    assert flagged.rating.flagged and flagged.rating.flag_reasons == [pb.FlagReason.REPORTED]
    assert "I was on time" in flagged.details
    reviewed = await harness.client("admin", "admin").review_flag(
        pb.ReviewFlagRequest(rating_id=rid, decision=DISMISS, note="ok")
    )
    assert reviewed.flagged_rating.review_status == pb.ReviewStatus.DISMISSED
    assert reviewed.flagged_rating.reviewer_id == "admin"
    received = await harness.client("tutor").list_ratings(pb.ListRatingsRequest(direction=RECEIVED))
    assert [r.id for r in received.ratings] == [rid]


async def test_scores_are_public_and_watchable(harness: Harness) -> None:
    anonymous = harness.client()
    err = await rpc_error(anonymous.get_reputation(pb.GetReputationRequest()))
    assert field_violations(err) == [("user_id", "is required when not signed in")]
    empty = await anonymous.get_reputation(pb.GetReputationRequest(user_id="tutor"))
    assert empty.reputation.current_score == 0 and empty.reputation.total_ratings == 0

    stream = anonymous.watch_reputation(pb.WatchReputationRequest(user_id="tutor"))
    updates = stream.__aiter__()
    first = await asyncio.wait_for(updates.__anext__(), 10)
    assert first.reputation.total_ratings == 0
    for student in ("s1", "s2"):
        await complete_session(harness.service, f"{student}-old", student)
    sid = await complete_session(harness.service, "tutor", "s1")
    await harness.client("s1").submit_rating(submit(sid, score=5))
    await harness.client("tutor").submit_rating(
        submit(sid, rated="s1", rater_role=pb.RaterRole.TUTOR, score=5)
    )
    while await harness.relay.relay_once():
        pass
    update = await asyncio.wait_for(updates.__anext__(), 10)
    assert update.reputation.user_id == "tutor"
    assert update.reputation.total_ratings == 1
    assert update.reputation.current_score == pytest.approx(3.875)
    roles = {int(r.rater_role): r for r in update.reputation.role_scores}
    assert roles[int(pb.RaterRole.STUDENT)].rating_count == 1
    got = await anonymous.get_reputation(pb.GetReputationRequest(user_id="tutor"))
    assert got.reputation.current_score == pytest.approx(3.875)
    await updates.aclose()  # type: ignore[attr-defined]


async def test_factory_runs_consumer_relay_and_sweeper(
    migrated_database: Database, clock: FixedClock, event_bus: EventBus
) -> None:
    fanout = EventFanout(event_bus, name="factory-test")
    runtime = FakeRuntime(migrated_database, event_bus, clock, fanout)
    servicer = build_reputation_servicer(runtime)
    assert set(runtime.jobs) == {
        "reputation.outbox_relay",
        "reputation.consumer",
        "reputation.sweeper",
    }
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in runtime.jobs.values()]
    try:
        event = session_event("tutor", "ana", clock.now(), "sess-bus")
        await event_bus.publish(event)
        await event_bus.publish(event)  # a redelivery: handled once
        for _ in range(200):
            async with migrated_database.session() as read:
                found = await Repository(read).subject(SubjectKind.SESSION, "sess-bus")
            if found is not None:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the consumer never opened the rating window")
        assert found.participants == {"tutor": "tutor", "ana": "student"}
        assert servicer.service.db is migrated_database
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        await fanout.close()


async def test_bad_input_on_the_other_rpcs(harness: Harness) -> None:
    ana = harness.client("ana")
    admin = harness.client("root", "admin")
    cases: list[tuple[Any, str, str]] = [
        (ana.get_rating(pb.GetRatingRequest()), "rating_id", "is required"),
        (
            ana.list_ratings(pb.ListRatingsRequest(page_size=-1)),
            "page_size",
            "must not be negative",
        ),
        (
            ana.list_ratings(pb.ListRatingsRequest(page_token="!!")),
            "page_token",
            "malformed page token",
        ),
        (ana.report_rating(pb.ReportRatingRequest(rating_id="r")), "reason", "is required"),
        (
            ana.report_rating(pb.ReportRatingRequest(rating_id="r", reason="x" * 1001)),
            "reason",
            "must be at most 1000 characters",
        ),
        (
            admin.review_flag(
                pb.ReviewFlagRequest(rating_id="r", decision=DISMISS, note="n" * 2001)
            ),
            "note",
            "must be at most 2000 characters",
        ),
        (
            ana.get_reputation(pb.GetReputationRequest(user_id="u" * 65)),
            "user_id",
            "must be at most 64 characters",
        ),
    ]
    for call, field_path, reason in cases:
        err = await rpc_error(call)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field_path, err.details())
        assert field_violations(err) == [(field_path, reason)]
    err = await rpc_error(ana.get_rating(pb.GetRatingRequest(rating_id="missing")))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "rating not found")
    err = await rpc_error(
        admin.review_flag(pb.ReviewFlagRequest(rating_id="missing", decision=DISMISS))
    )
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "rating not found")
