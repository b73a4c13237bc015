"""The marketplace over GraphQL, one module per capability: learning spaces and their
availability (`spaces`), `verification`, `reservations` (with the `reservationChanged`
subscription), `tutor_sessions` and space `ratings`.

Every resolver calls keiko.marketplace.v1.MarketplaceService over gRPC; none imports the
service's Python code. Public queries (space, searchSpaces, spaceAvailability,
spaceRatings) work without a token; everything else needs one. Lists page with
`first` / `after` (the service's opaque cursor) and return `nextPageToken`.
"""

from __future__ import annotations

import strawberry

from gateway.schema.marketplace.ratings import RatingsMutation, RatingsQuery
from gateway.schema.marketplace.reservations import (
    ReservationsMutation,
    ReservationsQuery,
    ReservationsSubscription,
)
from gateway.schema.marketplace.spaces import SpacesMutation, SpacesQuery
from gateway.schema.marketplace.tutor_sessions import TutorSessionsMutation, TutorSessionsQuery
from gateway.schema.marketplace.verification import VerificationMutation


# The order of the bases is the order of the fields in the SDL.
@strawberry.type
class MarketplaceQuery(SpacesQuery, RatingsQuery, ReservationsQuery, TutorSessionsQuery):
    pass


@strawberry.type
class MarketplaceMutation(
    SpacesMutation,
    VerificationMutation,
    ReservationsMutation,
    TutorSessionsMutation,
    RatingsMutation,
):
    pass


@strawberry.type
class MarketplaceSubscription(ReservationsSubscription):
    pass


__all__ = ["MarketplaceMutation", "MarketplaceQuery", "MarketplaceSubscription"]
