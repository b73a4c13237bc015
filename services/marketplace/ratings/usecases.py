"""Rating use cases: a participant of a completed reservation in the space (not its owner)
rates it once per reservation; anyone reads a space's ratings, newest first."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    ValidationError,
)
from services.kit.events import Event
from services.kit.paging import Page, page_size
from services.marketplace.common.domain import (
    decode_cursor,
    iso,
    page_of,
    validate_text,
)
from services.marketplace.common.storage import new_id
from services.marketplace.common.usecases import MarketplaceContext
from services.marketplace.ratings.domain import (
    MAX_COMMENT,
    TOPIC_SPACE_RATED,
    RatingInput,
    SpaceRating,
    validate_rating_score,
)
from services.marketplace.reservations.domain import ReservationStatus
from services.marketplace.spaces.domain import Space


class Ratings:
    def __init__(self, ctx: MarketplaceContext) -> None:
        self.ctx = ctx

    async def rate_space(
        self, principal: Principal, data: RatingInput
    ) -> tuple[SpaceRating, Space]:
        scores = [
            validate_rating_score(getattr(data, name), f"rating.{name}")
            for name in ("overall", "safety", "cleanliness", "accessibility")
        ]
        comment = validate_text(data.comment, "rating.comment", maximum=MAX_COMMENT)
        now = self.ctx.clock.now()
        try:
            async with self.ctx.write() as tx:
                space = await self.ctx.space(tx.repo, data.space_id, "space_id")
                r = await self.ctx.reservation(tx.repo, data.reservation_id)
                if r.space_id != space.id:
                    raise ValidationError("reservation_id", "is not a reservation of this space")
                if principal.user_id not in r.participants():
                    raise PermissionDenied("only a participant of the reservation may rate it")
                if principal.user_id == space.owner_id:
                    raise PermissionDenied("owners cannot rate their own space")
                if r.status is not ReservationStatus.COMPLETED:
                    raise FailedPrecondition("only a completed reservation can be rated")
                rating = SpaceRating(
                    id=new_id(),
                    space_id=space.id,
                    rater_id=principal.user_id,
                    reservation_id=r.id,
                    overall=scores[0],
                    safety=scores[1],
                    cleanliness=scores[2],
                    accessibility=scores[3],
                    comment=comment,
                    created_at=now,
                )
                await tx.repo.insert_rating(rating)
                await tx.repo.add_rating_to_summary(space.id, rating)
                await tx.emit(
                    Event(
                        TOPIC_SPACE_RATED,
                        key=space.id,
                        occurred_at=now,
                        payload={
                            "rating_id": rating.id,
                            "space_id": space.id,
                            "rater_id": rating.rater_id,
                            "reservation_id": r.id,
                            "overall": rating.overall,
                            "safety": rating.safety,
                            "cleanliness": rating.cleanliness,
                            "accessibility": rating.accessibility,
                            "created_at": iso(now),
                        },
                    )
                )
                updated = await self.ctx.space(tx.repo, space.id, "space_id")
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise AlreadyExists("you already rated this reservation") from exc
            raise
        return rating, updated

    async def list_ratings(
        self, space_id: str, requested_size: int, page_token: str
    ) -> Page[SpaceRating]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        async with self.ctx.read() as repo:
            space = await self.ctx.space(repo, space_id, "space_id")
            found = await repo.list_ratings(space.id, cursor, size + 1)
        return page_of(found, size, lambda r: (r.created_at, r.id))
