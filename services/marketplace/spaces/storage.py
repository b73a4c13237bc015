"""The spaces table and its queries (a mixin of `MarketplaceRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
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
from services.marketplace.common.domain import Money
from services.marketplace.common.storage import Store, after, metadata, ts
from services.marketplace.ratings.domain import RatingSummary
from services.marketplace.spaces.availability import Availability
from services.marketplace.spaces.domain import AccessibilityFeature, GeoPoint, Space
from services.marketplace.verification.domain import Certification, VerificationStatus
from services.marketplace.verification.storage import certifications_of

spaces = Table(
    "spaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("address", String(500), nullable=False),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("time_zone", String(64), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("amenities", SAJSON, nullable=False),
    Column("accessibility_features", SAJSON, nullable=False),
    Column("rate_currency", String(3), nullable=False),
    Column("rate_minor", BigInteger, nullable=False),
    Column("availability", SAJSON, nullable=False),
    Column("verification_status", String(16), nullable=False),
    Column("verification_note", Text, nullable=False, default=""),
    Column("reviewed_by", String(64), nullable=True),
    ts("reviewed_at", nullable=True),
    Column("rating_count", Integer, nullable=False, default=0),
    Column("overall_sum", BigInteger, nullable=False, default=0),
    Column("safety_sum", BigInteger, nullable=False, default=0),
    Column("cleanliness_sum", BigInteger, nullable=False, default=0),
    Column("accessibility_sum", BigInteger, nullable=False, default=0),
    Column("request_id", String(100), nullable=True),
    ts("created_at"),
    ts("updated_at"),
    CheckConstraint("capacity > 0", name="capacity"),
    CheckConstraint("rate_minor >= 0", name="rate_minor"),
    CheckConstraint(
        "verification_status IN ('unverified', 'pending', 'verified', 'rejected')",
        name="verification_status",
    ),
    UniqueConstraint("owner_id", "request_id"),
    Index(None, "owner_id"),
    Index(None, "created_at", "id"),
)


def space_from_row(row: Row[Any], certs: Sequence[Certification]) -> Space:
    geo = (
        GeoPoint(row.latitude, row.longitude)
        if row.latitude is not None and row.longitude is not None
        else None
    )
    return Space(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        description=row.description,
        address=row.address,
        geo=geo,
        time_zone=row.time_zone,
        capacity=row.capacity,
        amenities=tuple(row.amenities),
        accessibility_features=tuple(
            AccessibilityFeature(f["type"], f["description"]) for f in row.accessibility_features
        ),
        hourly_rate=Money(row.rate_currency, row.rate_minor),
        availability=Availability.from_json(row.availability),
        verification_status=VerificationStatus(row.verification_status),
        rating=RatingSummary(
            count=row.rating_count,
            overall_sum=row.overall_sum,
            safety_sum=row.safety_sum,
            cleanliness_sum=row.cleanliness_sum,
            accessibility_sum=row.accessibility_sum,
        ),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        certifications=tuple(certs),
    )


class SpaceStore(Store):
    """Queries of the spaces table, over one session (one transaction for writes)."""

    async def insert_space(self, space: Space, request_id: str) -> None:
        await self.session.execute(
            insert(spaces).values(
                **self._space_values(space),
                id=space.id,
                owner_id=space.owner_id,
                verification_note="",
                rating_count=0,
                overall_sum=0,
                safety_sum=0,
                cleanliness_sum=0,
                accessibility_sum=0,
                request_id=request_id or None,
                created_at=space.created_at,
            )
        )

    @staticmethod
    def _space_values(space: Space) -> dict[str, Any]:
        return {
            "name": space.name,
            "description": space.description,
            "address": space.address,
            "latitude": space.geo.latitude if space.geo else None,
            "longitude": space.geo.longitude if space.geo else None,
            "time_zone": space.time_zone,
            "capacity": space.capacity,
            "amenities": list(space.amenities),
            "accessibility_features": [
                {"type": f.feature_type, "description": f.description}
                for f in space.accessibility_features
            ],
            "rate_currency": space.hourly_rate.currency,
            "rate_minor": space.hourly_rate.amount_minor,
            "availability": space.availability.to_json(),
            "verification_status": str(space.verification_status),
            "updated_at": space.updated_at,
        }

    async def save_space(self, space: Space) -> None:
        """Write the owner-editable fields and the verification status."""
        await self.session.execute(
            update(spaces).where(spaces.c.id == space.id).values(**self._space_values(space))
        )

    async def set_verification(
        self,
        space_id: str,
        status: str,
        *,
        now: datetime,
        note: str | None = None,
        reviewed_by: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"verification_status": status, "updated_at": now}
        if note is not None:
            values["verification_note"] = note
        if reviewed_by is not None:
            values["reviewed_by"] = reviewed_by
            values["reviewed_at"] = now
        await self.session.execute(update(spaces).where(spaces.c.id == space_id).values(**values))

    async def get_space(self, space_id: str, *, for_update: bool = False) -> Space | None:
        query = select(spaces).where(spaces.c.id == space_id)
        if for_update and self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        certs = await certifications_of(self.session, [space_id])
        return space_from_row(row, certs.get(space_id, []))

    async def space_id_by_request(self, owner_id: str, request_id: str) -> str | None:
        query = select(spaces.c.id).where(
            spaces.c.owner_id == owner_id, spaces.c.request_id == request_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def spaces_after(
        self,
        cursor: tuple[datetime, str] | None,
        limit: int,
        *,
        owner_id: str = "",
        min_capacity: int = 0,
        verified_only: bool = False,
        max_rate: Money | None = None,
    ) -> list[Space]:
        """Spaces in (created_at, id) order after `cursor`, with the filters SQL can apply."""
        query = select(spaces).where(after(spaces.c.created_at, spaces.c.id, cursor))
        if owner_id:
            query = query.where(spaces.c.owner_id == owner_id)
        if min_capacity:
            query = query.where(spaces.c.capacity >= min_capacity)
        if verified_only:
            query = query.where(spaces.c.verification_status == "verified")
        if max_rate is not None:
            query = query.where(
                spaces.c.rate_currency == max_rate.currency,
                spaces.c.rate_minor <= max_rate.amount_minor,
            )
        query = query.order_by(spaces.c.created_at, spaces.c.id).limit(limit)
        rows = (await self.session.execute(query)).all()
        certs = await certifications_of(self.session, [r.id for r in rows])
        return [space_from_row(r, certs.get(r.id, [])) for r in rows]
