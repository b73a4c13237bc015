"""The keiko.reputation.v1.ReputationService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token needed): GetReputation and WatchReputation. Scores are public
by design (a learner chooses a tutor by them); they only ever contain revealed,
unflagged ratings, so they leak nothing the blind hides. Every other RPC needs a caller.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import betterproto

from services.api.keiko.reputation import v1 as pb
from services.kit.auth import Principal, current_principal, optional_principal
from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import Deduplicator, handle_once, run_consumer
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.logging import get_logger
from services.kit.runtime import BackgroundJob, ServiceRuntime
from services.reputation.domain import (
    Decision,
    FlagReason,
    Rating,
    RatingInput,
    ReviewStatus,
    Role,
    Score,
    SubjectKind,
    validate_text,
)
from services.reputation.service import (
    CONSUMED_TOPICS,
    TOPIC_REPUTATION_UPDATED,
    HumanityLookup,
    ReputationService,
    StoredHumanityLookup,
    can_see,
    withheld,
)
from services.reputation.storage import outbox, processed_events

log = get_logger(__name__)

_ROLE_TO_PB: dict[Role, pb.RaterRole] = {role: pb.RaterRole.from_string(role.name) for role in Role}
_ROLE_FROM_PB = {int(v): k for k, v in _ROLE_TO_PB.items()}
_REASON_TO_PB: dict[FlagReason, pb.FlagReason] = {
    reason: pb.FlagReason.from_string(reason.name) for reason in FlagReason
}
_STATUS_TO_PB: dict[ReviewStatus, pb.ReviewStatus] = {
    status: pb.ReviewStatus.from_string(status.name) for status in ReviewStatus
}
_STATUS_FROM_PB = {int(v): k for k, v in _STATUS_TO_PB.items()}
_DECISION_FROM_PB = {
    int(pb.FlagDecision.DISMISS): Decision.DISMISS,
    int(pb.FlagDecision.UPHOLD): Decision.UPHOLD,
}

CONSUMER_GROUP = "reputation"
REVEAL_INTERVAL_S = 60.0
RECOMPUTE_INTERVAL_S = 3600.0


class ReputationServicer(pb.ReputationServiceBase):
    public_methods = frozenset({"GetReputation", "WatchReputation"})

    def __init__(self, service: ReputationService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout

    async def submit_rating(
        self, submit_rating_request: pb.SubmitRatingRequest
    ) -> pb.SubmitRatingResponse:
        caller = current_principal()
        request = submit_rating_request
        which, value = betterproto.which_one_of(request, "subject")
        kind = {"session_id": SubjectKind.SESSION, "interaction_id": SubjectKind.INTERACTION}
        rating = await self.service.submit(
            caller,
            RatingInput(
                rated_id=request.rated_id,
                rater_role=_ROLE_FROM_PB.get(int(request.rater_role)),
                subject_kind=kind.get(which) if value else None,
                subject_id=str(value or ""),
                score=request.score,
                comment=request.comment,
                request_id=request.request_id,
            ),
        )
        return pb.SubmitRatingResponse(rating=self._rating(rating, caller))

    async def get_rating(self, get_rating_request: pb.GetRatingRequest) -> pb.GetRatingResponse:
        caller = current_principal()
        rating = await self.service.get_rating(caller, get_rating_request.rating_id)
        return pb.GetRatingResponse(rating=self._rating(rating, caller))

    async def list_ratings(
        self, list_ratings_request: pb.ListRatingsRequest
    ) -> pb.ListRatingsResponse:
        caller = current_principal()
        request = list_ratings_request
        page = await self.service.list_ratings(
            caller,
            user_id=request.user_id,
            given=request.direction == pb.RatingDirection.GIVEN,
            include_expired=request.include_expired,
            requested_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListRatingsResponse(
            ratings=[self._rating(r, caller) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def get_reputation(
        self, get_reputation_request: pb.GetReputationRequest
    ) -> pb.GetReputationResponse:
        user_id = _subject_user(get_reputation_request.user_id)
        score = await self.service.reputation(user_id)
        return pb.GetReputationResponse(reputation=score_to_pb(score))

    async def report_rating(
        self, report_rating_request: pb.ReportRatingRequest
    ) -> pb.ReportRatingResponse:
        caller = current_principal()
        request = report_rating_request
        rating = await self.service.report(caller, request.rating_id, request.reason)
        return pb.ReportRatingResponse(flagged_rating=self._flagged(rating, caller))

    async def list_flagged_ratings(
        self, list_flagged_ratings_request: pb.ListFlaggedRatingsRequest
    ) -> pb.ListFlaggedRatingsResponse:
        caller = current_principal()
        request = list_flagged_ratings_request
        if int(request.review_status) == int(pb.ReviewStatus.UNSPECIFIED):
            status = ReviewStatus.OPEN
        else:
            found = _STATUS_FROM_PB.get(int(request.review_status))
            if found is None:
                raise ValidationError("review_status", "must be a known review status")
            status = found
        page = await self.service.list_flagged(
            caller, status, request.page_size, request.page_token
        )
        return pb.ListFlaggedRatingsResponse(
            flagged_ratings=[self._flagged(r, caller) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def review_flag(self, review_flag_request: pb.ReviewFlagRequest) -> pb.ReviewFlagResponse:
        caller = current_principal()
        request = review_flag_request
        rating = await self.service.review(
            caller,
            request.rating_id,
            _DECISION_FROM_PB.get(int(request.decision)),
            request.note,
        )
        return pb.ReviewFlagResponse(flagged_rating=self._flagged(rating, caller))

    async def watch_reputation(
        self, watch_reputation_request: pb.WatchReputationRequest
    ) -> AsyncIterator[pb.WatchReputationResponse]:
        user_id = _subject_user(watch_reputation_request.user_id)
        if self.fanout is None:
            raise RuntimeError("WatchReputation needs the process's event fanout")

        def mine(event: Event) -> bool:
            # Public scores: anyone may watch anyone; only this user's updates though.
            return event.topic == TOPIC_REPUTATION_UPDATED and event.key == user_id

        # Listen first, then read: no update between the two is lost.
        async with self.fanout.listen([TOPIC_REPUTATION_UPDATED], mine) as events:
            current = await self.service.reputation(user_id)
            yield pb.WatchReputationResponse(reputation=score_to_pb(current))
            last = current.last_updated
            async for event in events:
                score = Score.from_json(event.payload)
                if score.last_updated < last:
                    continue  # an older announcement overtaken by what we already sent
                last = score.last_updated
                yield pb.WatchReputationResponse(reputation=score_to_pb(score))

    # -- encoding ---------------------------------------------------------------------------

    def _rating(self, rating: Rating, viewer: Principal | None) -> pb.Rating:
        return rating_to_pb(rating, viewer, self.service.clock)

    def _flagged(self, rating: Rating, viewer: Principal) -> pb.FlaggedRating:
        flag = rating.flag
        assert flag is not None
        message = pb.FlaggedRating(
            rating=self._rating(rating, viewer),
            # A reporter sees their report, not what detection found (admins see all).
            reasons=[
                _REASON_TO_PB[r]
                for r in flag.reasons
                if viewer.is_admin or r is FlagReason.REPORTED
            ],
            details=flag.details if viewer.is_admin else "",
            flagged_at=flag.flagged_at,
            review_status=_STATUS_TO_PB[flag.status],
            reviewer_id=flag.reviewer_id if viewer.is_admin else "",
            review_note=flag.review_note,
        )
        if flag.reviewed_at is not None:
            message.reviewed_at = flag.reviewed_at
        return message


def _subject_user(user_id: str) -> str:
    user_id = validate_text(user_id, "user_id", 64, required=False)
    if user_id:
        return user_id
    caller = optional_principal()
    if caller is None:
        raise ValidationError("user_id", "is required when not signed in")
    return caller.user_id


def rating_to_pb(rating: Rating, viewer: Principal | None, clock: Clock) -> pb.Rating:
    """As the viewer may see it: score and comment withheld while blind; flags shown to
    admins only (telling a manipulator which rule caught them helps them evade it)."""
    now = clock.now()
    hidden = withheld(viewer, rating, now)
    assert can_see(viewer, rating, now)
    is_admin = viewer is not None and viewer.is_admin
    message = pb.Rating(
        id=rating.id,
        rater_id=rating.rater_id,
        rated_id=rating.rated_id,
        rater_role=_ROLE_TO_PB[rating.rater_role],
        score=0 if hidden else rating.score,
        comment="" if hidden else rating.comment,
        created_at=rating.created_at,
        expires_at=rating.expires_at,
        revealed=rating.revealed(now),
        flagged=is_admin and rating.excluded,
        flag_reasons=[_REASON_TO_PB[r] for r in rating.flag.reasons]
        if is_admin and rating.flag is not None
        else [],
        weight=0.0 if hidden else rating.weight(now),
    )
    if rating.subject_kind is SubjectKind.SESSION:
        message.session_id = rating.subject_id
    else:
        message.interaction_id = rating.subject_id
    return message


def score_to_pb(score: Score) -> pb.ReputationScore:
    return pb.ReputationScore(
        user_id=score.user_id,
        current_score=score.current_score,
        historical_score=score.historical_score,
        total_ratings=score.total_ratings,
        recent_ratings=score.recent_ratings,
        role_scores=[
            pb.RoleScore(
                rater_role=_ROLE_TO_PB[r.rater_role],
                current_score=r.current_score,
                rating_count=r.rating_count,
            )
            for r in score.role_scores
        ],
        last_updated=score.last_updated,
    )


# -- composition ----------------------------------------------------------------------------


def build_reputation_servicer(
    runtime: ServiceRuntime, *, humanity: HumanityLookup | None = None
) -> ReputationServicer:
    """Composition-root factory: the servicer plus its background jobs (outbox relay, the
    consumer of session-completed and humanity events, the reveal/decay sweeper)."""
    db = runtime.database
    service = ReputationService(db, runtime.clock, humanity or StoredHumanityLookup(db))
    relay = OutboxRelay(db, outbox, runtime.event_bus, clock=runtime.clock)
    runtime.run_in_background("reputation.outbox_relay", relay.run)
    runtime.run_in_background(
        "reputation.consumer", consumer_job(service, runtime.event_bus, runtime.clock)
    )
    runtime.run_in_background("reputation.sweeper", sweeper_job(service))
    return ReputationServicer(service, runtime.fanout)


def consumer_job(service: ReputationService, bus: EventBus, clock: Clock) -> BackgroundJob:
    """Consume completed sessions and humanity updates, each event once in effect."""
    dedupe = Deduplicator(processed_events, group=CONSUMER_GROUP, clock=clock)

    async def on_event(event: Event) -> None:
        await handle_once(service.db, dedupe, event, service.handle_event)

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            list(CONSUMED_TOPICS),
            group=CONSUMER_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            start="earliest",
        )
        consumer = asyncio.create_task(run_consumer(subscription, on_event))
        await stop.wait()
        await subscription.close()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    return run


def sweeper_job(
    service: ReputationService,
    reveal_interval_s: float = REVEAL_INTERVAL_S,
    recompute_interval_s: float = RECOMPUTE_INTERVAL_S,
) -> BackgroundJob:
    """Reveal ratings whose window closed (every minute) and re-announce scores that decay
    moved (every hour, vectorized over all ratings). Any replica may run it: reveals claim
    rows (SKIP LOCKED / SQLite write lock) and announcements are snapshot-diffed."""

    async def run(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_recompute = loop.time()
        while not stop.is_set():
            try:
                revealed = await service.reveal_due()
                if revealed:
                    log.info("reputation.revealed", ratings=revealed)
                if loop.time() >= next_recompute:
                    announced = await service.recompute_all()
                    next_recompute = loop.time() + recompute_interval_s
                    if announced:
                        log.info("reputation.recomputed", announced=announced)
            except Exception:
                log.exception("reputation.sweeper_failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=reveal_interval_s)
            except TimeoutError:
                continue

    return run
