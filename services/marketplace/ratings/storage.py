"""The space ratings table, the summary kept on the space, and their queries (a mixin of
`MarketplaceRepository`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.kit.clock import as_utc
from services.marketplace.common.storage import Store, before, metadata, ts
from services.marketplace.ratings.domain import SpaceRating
from services.marketplace.spaces.storage import spaces

space_ratings = Table(
    "space_ratings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("rater_id", String(64), nullable=False),
    Column(
        "reservation_id",
        String(36),
        ForeignKey("reservations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("overall", Integer, nullable=False),
    Column("safety", Integer, nullable=False),
    Column("cleanliness", Integer, nullable=False),
    Column("accessibility", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    ts("created_at"),
    CheckConstraint(
        "overall BETWEEN 1 AND 5 AND safety BETWEEN 1 AND 5 AND cleanliness BETWEEN 1 AND 5 "
        "AND accessibility BETWEEN 1 AND 5",
        name="scores",
    ),
    UniqueConstraint("reservation_id", "rater_id"),
    Index(None, "space_id", "created_at"),
)


def _rating(row: Row[Any]) -> SpaceRating:
    return SpaceRating(
        id=row.id,
        space_id=row.space_id,
        rater_id=row.rater_id,
        reservation_id=row.reservation_id,
        overall=row.overall,
        safety=row.safety,
        cleanliness=row.cleanliness,
        accessibility=row.accessibility,
        comment=row.comment,
        created_at=as_utc(row.created_at),
    )


class RatingStore(Store):
    """Queries of the ratings table and the space's rating summary, over one session."""

    async def insert_rating(self, rating: SpaceRating) -> None:
        await self.session.execute(
            insert(space_ratings).values(
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
        )

    async def list_ratings(
        self, space_id: str, cursor: tuple[datetime, str] | None, limit: int
    ) -> list[SpaceRating]:
        t = space_ratings
        query = (
            select(t)
            .where(t.c.space_id == space_id, before(t.c.created_at, t.c.id, cursor))
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(limit)
        )
        return [_rating(r) for r in (await self.session.execute(query)).all()]

    async def add_rating_to_summary(self, space_id: str, rating: SpaceRating) -> None:
        """Atomic increments: concurrent ratings never lose an update."""
        await self.session.execute(
            update(spaces)
            .where(spaces.c.id == space_id)
            .values(
                rating_count=spaces.c.rating_count + 1,
                overall_sum=spaces.c.overall_sum + rating.overall,
                safety_sum=spaces.c.safety_sum + rating.safety,
                cleanliness_sum=spaces.c.cleanliness_sum + rating.cleanliness,
                accessibility_sum=spaces.c.accessibility_sum + rating.accessibility,
            )
        )
