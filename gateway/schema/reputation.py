"""Reputation over GraphQL: ratings (blind until both sides rated or the window closed),
public reputation scores, reports and admin reviews, and the `reputationUpdated`
subscription backed by WatchReputation.

Every resolver calls the reputation service over gRPC; none imports its Python code.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import ClientError, rpc, rpc_stream
from services.api.keiko.reputation import v1 as pb


@strawberry.enum(description="The part the rater played in the rated exchange.")
class RaterRole(enum.Enum):
    STUDENT = "STUDENT"
    TUTOR = "TUTOR"


@strawberry.enum(description="Why a rating was flagged.")
class FlagReason(enum.Enum):
    RATING_RING = "RATING_RING"
    BURST = "BURST"
    SELF_DEALING = "SELF_DEALING"
    REPORTED = "REPORTED"


@strawberry.enum
class RatingDirection(enum.Enum):
    GIVEN = "GIVEN"
    RECEIVED = "RECEIVED"


@strawberry.enum
class ReviewStatus(enum.Enum):
    OPEN = "OPEN"
    DISMISSED = "DISMISSED"
    UPHELD = "UPHELD"


@strawberry.enum
class FlagDecision(enum.Enum):
    DISMISS = "DISMISS"
    UPHOLD = "UPHOLD"


def _name(value: betterproto.Enum, prefix: str) -> str:
    return str(value.name).removeprefix(prefix)


@strawberry.type(description="A 1-5 rating of one side of an exchange by the other.")
class Rating:
    id: strawberry.ID
    rater_id: strawberry.ID
    rated_id: strawberry.ID
    rater_role: RaterRole
    session_id: strawberry.ID | None
    interaction_id: strawberry.ID | None
    score: int | None = strawberry.field(description="Null while withheld from you (blind).")
    comment: str | None = strawberry.field(description="Null while withheld from you (blind).")
    created_at: datetime
    expires_at: datetime
    revealed: bool
    flagged: bool = strawberry.field(description="Shown to admins only.")
    flag_reasons: list[FlagReason]
    weight: float

    @staticmethod
    def from_pb(r: pb.Rating) -> Rating:
        which, value = betterproto.which_one_of(r, "subject")
        withheld = not r.revealed and r.score == 0
        return Rating(
            id=strawberry.ID(r.id),
            rater_id=strawberry.ID(r.rater_id),
            rated_id=strawberry.ID(r.rated_id),
            rater_role=RaterRole[_name(pb.RaterRole(r.rater_role), "RATER_ROLE_")],
            session_id=strawberry.ID(str(value)) if which == "session_id" else None,
            interaction_id=strawberry.ID(str(value)) if which == "interaction_id" else None,
            score=None if withheld else r.score,
            comment=None if withheld else r.comment,
            created_at=r.created_at,
            expires_at=r.expires_at,
            revealed=r.revealed,
            flagged=r.flagged,
            flag_reasons=[
                FlagReason[_name(pb.FlagReason(x), "FLAG_REASON_")] for x in r.flag_reasons
            ],
            weight=r.weight,
        )


@strawberry.type
class RoleScore:
    rater_role: RaterRole = strawberry.field(
        description="STUDENT: the user's reputation as a tutor; TUTOR: as a student."
    )
    current_score: float
    rating_count: int


@strawberry.type(description="A user's public reputation (revealed, unflagged ratings only).")
class ReputationScore:
    user_id: strawberry.ID
    current_score: float = strawberry.field(
        description="Decay-weighted (30 days), smoothed toward 3.5; 0 with no recent rating."
    )
    historical_score: float
    total_ratings: int
    recent_ratings: int
    role_scores: list[RoleScore]
    last_updated: datetime

    @staticmethod
    def from_pb(s: pb.ReputationScore) -> ReputationScore:
        return ReputationScore(
            user_id=strawberry.ID(s.user_id),
            current_score=s.current_score,
            historical_score=s.historical_score,
            total_ratings=s.total_ratings,
            recent_ratings=s.recent_ratings,
            role_scores=[
                RoleScore(
                    rater_role=RaterRole[_name(pb.RaterRole(r.rater_role), "RATER_ROLE_")],
                    current_score=r.current_score,
                    rating_count=r.rating_count,
                )
                for r in s.role_scores
            ],
            last_updated=s.last_updated,
        )


@strawberry.type
class FlaggedRating:
    rating: Rating
    reasons: list[FlagReason]
    details: str
    flagged_at: datetime
    review_status: ReviewStatus
    reviewer_id: strawberry.ID | None
    review_note: str
    reviewed_at: datetime | None

    @staticmethod
    def from_pb(f: pb.FlaggedRating) -> FlaggedRating:
        return FlaggedRating(
            rating=Rating.from_pb(f.rating),
            reasons=[FlagReason[_name(pb.FlagReason(x), "FLAG_REASON_")] for x in f.reasons],
            details=f.details,
            flagged_at=f.flagged_at,
            review_status=ReviewStatus[_name(pb.ReviewStatus(f.review_status), "REVIEW_STATUS_")],
            reviewer_id=strawberry.ID(f.reviewer_id) if f.reviewer_id else None,
            review_note=f.review_note,
            reviewed_at=f.reviewed_at if f.review_status != pb.ReviewStatus.OPEN else None,
        )


@strawberry.type
class RatingPage:
    ratings: list[Rating]
    next_page_token: str


@strawberry.type
class FlaggedRatingPage:
    flagged_ratings: list[FlaggedRating]
    next_page_token: str


@strawberry.input
class SubmitRatingInput:
    rated_id: strawberry.ID
    rater_role: RaterRole
    session_id: strawberry.ID | None = None
    interaction_id: strawberry.ID | None = None
    score: int
    comment: str = ""
    request_id: str = strawberry.field(
        default="", description="Client-chosen id: a retried submission returns the first."
    )


def reputation(info: Info) -> pb.ReputationServiceStub:
    return info.context.client(pb.ReputationServiceStub)  # type: ignore[no-any-return]


@strawberry.type
class ReputationQuery:
    @strawberry.field(description="A user's reputation (public); omit userId for your own.")
    async def reputation(self, info: Info, user_id: strawberry.ID | None = None) -> ReputationScore:
        response = await rpc(
            reputation(info).get_reputation(pb.GetReputationRequest(user_id=str(user_id or "")))
        )
        return ReputationScore.from_pb(response.reputation)

    @strawberry.field(description="One rating, as the blind lets you see it.")
    async def rating(self, info: Info, id: strawberry.ID) -> Rating:
        info.context.require_token()
        response = await rpc(reputation(info).get_rating(pb.GetRatingRequest(rating_id=str(id))))
        return Rating.from_pb(response.rating)

    @strawberry.field(description="Ratings a user gave or received, newest first.")
    async def ratings(
        self,
        info: Info,
        user_id: strawberry.ID | None = None,
        direction: RatingDirection = RatingDirection.RECEIVED,
        include_expired: bool = False,
        first: int = 50,
        after: str = "",
    ) -> RatingPage:
        info.context.require_token()
        response = await rpc(
            reputation(info).list_ratings(
                pb.ListRatingsRequest(
                    user_id=str(user_id or ""),
                    direction=pb.RatingDirection.from_string(direction.value),
                    include_expired=include_expired,
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return RatingPage(
            ratings=[Rating.from_pb(r) for r in response.ratings],
            next_page_token=response.next_page_token,
        )

    @strawberry.field(description="Flagged ratings awaiting (or after) review. Admins only.")
    async def flagged_ratings(
        self,
        info: Info,
        status: ReviewStatus = ReviewStatus.OPEN,
        first: int = 50,
        after: str = "",
    ) -> FlaggedRatingPage:
        info.context.require_token()
        response = await rpc(
            reputation(info).list_flagged_ratings(
                pb.ListFlaggedRatingsRequest(
                    review_status=pb.ReviewStatus.from_string(status.value),
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return FlaggedRatingPage(
            flagged_ratings=[FlaggedRating.from_pb(f) for f in response.flagged_ratings],
            next_page_token=response.next_page_token,
        )


@strawberry.type
class ReputationMutation:
    @strawberry.mutation(description="Rate the other side of a session you took part in.")
    async def submit_rating(self, info: Info, input: SubmitRatingInput) -> Rating:
        info.context.require_token()
        if (input.session_id is None) == (input.interaction_id is None):
            raise ClientError(
                "give exactly one of sessionId or interactionId",
                "BAD_USER_INPUT",
                field="subject",
            )
        request = pb.SubmitRatingRequest(
            rated_id=str(input.rated_id),
            rater_role=pb.RaterRole.from_string(input.rater_role.value),
            score=min(max(input.score, 0), 1000),  # uint32 on the wire; 1-5 checked there
            comment=input.comment,
            request_id=input.request_id,
        )
        if input.session_id is not None:
            request.session_id = str(input.session_id)
        else:
            request.interaction_id = str(input.interaction_id)
        response = await rpc(reputation(info).submit_rating(request))
        return Rating.from_pb(response.rating)

    @strawberry.mutation(description="Report a rating you received for review.")
    async def report_rating(
        self, info: Info, rating_id: strawberry.ID, reason: str
    ) -> FlaggedRating:
        info.context.require_token()
        response = await rpc(
            reputation(info).report_rating(
                pb.ReportRatingRequest(rating_id=str(rating_id), reason=reason)
            )
        )
        return FlaggedRating.from_pb(response.flagged_rating)

    @strawberry.mutation(description="Decide a flagged rating. Admins only.")
    async def review_flag(
        self, info: Info, rating_id: strawberry.ID, decision: FlagDecision, note: str = ""
    ) -> FlaggedRating:
        info.context.require_token()
        response = await rpc(
            reputation(info).review_flag(
                pb.ReviewFlagRequest(
                    rating_id=str(rating_id),
                    decision=pb.FlagDecision.from_string(decision.value),
                    note=note,
                )
            )
        )
        return FlaggedRating.from_pb(response.flagged_rating)


@strawberry.type
class ReputationSubscription:
    @strawberry.subscription(
        description="A user's reputation: the current value first, then every change. "
        "Public; omit userId for your own."
    )
    async def reputation_updated(
        self, info: Info, user_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ReputationScore, None]:
        stream = reputation(info).watch_reputation(
            pb.WatchReputationRequest(user_id=str(user_id or ""))
        )
        async for reply in rpc_stream(stream):
            yield ReputationScore.from_pb(reply.reputation)
