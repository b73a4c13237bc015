"""Space ratings over GraphQL: a space's ratings (public) and rating a space."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.marketplace.common import marketplace, signed_in, u32
from gateway.schema.marketplace.spaces import SpaceRatingSummary
from services.api.keiko.marketplace import v1 as pb


@strawberry.type
class SpaceRating:
    id: strawberry.ID
    space_id: strawberry.ID
    rater_id: strawberry.ID
    reservation_id: strawberry.ID
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str
    created_at: datetime

    @staticmethod
    def from_pb(r: pb.SpaceRating) -> SpaceRating:
        return SpaceRating(
            id=strawberry.ID(r.id),
            space_id=strawberry.ID(r.space_id),
            rater_id=strawberry.ID(r.rater_id),
            reservation_id=strawberry.ID(r.reservation_id),
            overall=r.overall,
            safety=r.safety,
            cleanliness=r.cleanliness,
            accessibility=r.accessibility,
            comment=r.comment,
            created_at=r.created_at,
        )


@strawberry.type
class SpaceRatingPage:
    ratings: list[SpaceRating]
    next_page_token: str | None


@strawberry.type
class SpaceRatingPayload:
    rating: SpaceRating
    summary: SpaceRatingSummary


@strawberry.input
class RateSpaceInput:
    space_id: strawberry.ID
    reservation_id: strawberry.ID
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str = ""


@strawberry.type
class RatingsQuery:
    @strawberry.field(description="Ratings of a space, newest first (public).")
    async def space_ratings(
        self, info: Info, space_id: strawberry.ID, first: int = 20, after: str = ""
    ) -> SpaceRatingPage:
        response = await rpc(
            marketplace(info).list_space_ratings(
                pb.ListSpaceRatingsRequest(
                    space_id=str(space_id), page_size=first, page_token=after
                )
            )
        )
        return SpaceRatingPage(
            ratings=[SpaceRating.from_pb(r) for r in response.ratings],
            next_page_token=response.next_page_token or None,
        )


@strawberry.type
class RatingsMutation:
    @strawberry.mutation(description="Rate a space after a completed reservation there.")
    async def rate_space(self, info: Info, input: RateSpaceInput) -> SpaceRatingPayload:
        response = await rpc(
            signed_in(info).rate_space(
                pb.RateSpaceRequest(
                    space_id=str(input.space_id),
                    reservation_id=str(input.reservation_id),
                    overall=u32(input.overall),
                    safety=u32(input.safety),
                    cleanliness=u32(input.cleanliness),
                    accessibility=u32(input.accessibility),
                    comment=input.comment,
                )
            )
        )
        return SpaceRatingPayload(
            rating=SpaceRating.from_pb(response.rating),
            summary=SpaceRatingSummary.from_pb(response.summary),
        )
