"""gRPC: space rating RPCs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.marketplace.ratings.domain import RatingInput, SpaceRating
from services.marketplace.spaces.servicer import summary_to_pb

if TYPE_CHECKING:
    from services.marketplace.service import MarketplaceService


class RatingsServicer:
    service: MarketplaceService

    async def rate_space(self, rate_space_request: pb.RateSpaceRequest) -> pb.RateSpaceResponse:
        caller = current_principal()
        r = rate_space_request
        rating, space = await self.service.ratings.rate_space(
            caller,
            RatingInput(
                space_id=r.space_id,
                reservation_id=r.reservation_id,
                overall=r.overall,
                safety=r.safety,
                cleanliness=r.cleanliness,
                accessibility=r.accessibility,
                comment=r.comment,
            ),
        )
        return pb.RateSpaceResponse(rating=rating_to_pb(rating), summary=summary_to_pb(space))

    async def list_space_ratings(
        self, list_space_ratings_request: pb.ListSpaceRatingsRequest
    ) -> pb.ListSpaceRatingsResponse:
        r = list_space_ratings_request
        page = await self.service.ratings.list_ratings(r.space_id, r.page_size, r.page_token)
        return pb.ListSpaceRatingsResponse(
            ratings=[rating_to_pb(x) for x in page.items], next_page_token=page.next_page_token
        )


def rating_to_pb(rating: SpaceRating) -> pb.SpaceRating:
    return pb.SpaceRating(
        id=rating.id,
        space_id=rating.space_id,
        rater_id=rating.rater_id,
        reservation_id=rating.reservation_id,
        overall=rating.overall,
        safety=rating.safety,
        cleanliness=rating.cleanliness,
        accessibility=rating.accessibility,
        comment=rating.comment,
        created_at=rating.created_at,
    )
