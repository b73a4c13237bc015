"""Marketplace persistence: tables in the `marketplace` schema and the repository over them.

No double booking is a property of the database, not of this module: the migration adds
an exclusion constraint on PostgreSQL and BEFORE INSERT/UPDATE triggers on SQLite over
the active (requested, confirmed) reservations of a space (see the migration and
`NO_OVERLAP_CONSTRAINT`). The repository just inserts and lets the database refuse.

Every datetime is written in UTC; SQLite hands back naive values, read back as UTC. The
fixed-width text SQLite stores for them sorts and compares chronologically, which the
SQLite trigger relies on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from services.kit.db import NAMING_CONVENTION
from services.kit.events.outbox import outbox_table
from services.kit.invitations import invitation_table
from services.marketplace.domain import (
    ACTIVE_STATUSES,
    AccessibilityFeature,
    Availability,
    Cancellation,
    Certification,
    GeoPoint,
    Money,
    RatingSummary,
    RefundOutcome,
    Reservation,
    ReservationStatus,
    Space,
    SpaceRating,
    TutorSession,
    TutorSessionStatus,
    VerificationStatus,
)

SCHEMA = "marketplace"

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


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
    _ts("reviewed_at", nullable=True),
    Column("rating_count", Integer, nullable=False, default=0),
    Column("overall_sum", BigInteger, nullable=False, default=0),
    Column("safety_sum", BigInteger, nullable=False, default=0),
    Column("cleanliness_sum", BigInteger, nullable=False, default=0),
    Column("accessibility_sum", BigInteger, nullable=False, default=0),
    Column("request_id", String(100), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
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

certifications = Table(
    "certifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("issuer", String(200), nullable=False),
    Column("reference", String(200), nullable=False),
    _ts("valid_until", nullable=True),
    Column("child_protection", Boolean, nullable=False, default=False),
    Column("attested_by", String(64), nullable=True),
    _ts("attested_at", nullable=True),
    Column("anchor_tx_hash", String(80), nullable=False, default=""),
    Column("request_id", String(100), nullable=True),
    _ts("created_at"),
    UniqueConstraint("space_id", "request_id"),
    Index(None, "space_id"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("tutor_id", String(64), nullable=False),
    Column("student_id", String(64), nullable=False),
    _ts("start_time"),
    _ts("end_time"),
    Column("status", String(16), nullable=False),
    Column("cost_currency", String(3), nullable=False),
    Column("cost_minor", BigInteger, nullable=False),
    Column("safety_requirements", SAJSON, nullable=False),
    Column("tutor_session_id", String(36), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("request_id", String(100), nullable=True),
    Column("cancelled_by", String(64), nullable=True),
    _ts("cancelled_at", nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("refund_outcome", String(16), nullable=True),
    Column("refund_minor", BigInteger, nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("end_time > start_time", name="time_order"),
    CheckConstraint(
        "status IN ('requested', 'confirmed', 'cancelled', 'completed')", name="status"
    ),
    UniqueConstraint("created_by", "request_id"),
    Index(None, "space_id", "start_time"),
    Index(None, "tutor_id", "start_time"),
    Index(None, "student_id", "start_time"),
)

tutor_sessions = Table(
    "tutor_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tutor_id", String(64), nullable=False),
    Column("student_id", String(64), nullable=False),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column(
        "reservation_id",
        String(36),
        ForeignKey("reservations.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    _ts("start_time"),
    _ts("end_time"),
    Column("subject", String(200), nullable=False),
    Column("class_id", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("learning_session_id", String(64), nullable=False, default=""),
    _ts("created_at"),
    _ts("updated_at"),
    CheckConstraint("status IN ('scheduled', 'completed', 'cancelled')", name="status"),
    Index(None, "tutor_id", "start_time"),
    Index(None, "student_id", "start_time"),
)

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
    _ts("created_at"),
    CheckConstraint(
        "overall BETWEEN 1 AND 5 AND safety BETWEEN 1 AND 5 AND cleanliness BETWEEN 1 AND 5 "
        "AND accessibility BETWEEN 1 AND 5",
        name="scores",
    ),
    UniqueConstraint("reservation_id", "rater_id"),
    Index(None, "space_id", "created_at"),
)

outbox = outbox_table(metadata)
invitations_table = invitation_table(metadata)


def new_id() -> str:
    return str(uuid.uuid4())


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_req(value: datetime) -> datetime:
    result = _utc(value)
    assert result is not None
    return result


# -- row mappers ----------------------------------------------------------------------------


def _space(row: Row[Any], certs: Sequence[Certification]) -> Space:
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
        created_at=_utc_req(row.created_at),
        updated_at=_utc_req(row.updated_at),
        certifications=tuple(certs),
    )


def _certification(row: Row[Any]) -> Certification:
    return Certification(
        id=row.id,
        space_id=row.space_id,
        name=row.name,
        issuer=row.issuer,
        reference=row.reference,
        valid_until=_utc(row.valid_until),
        child_protection=row.child_protection,
        attested_by=row.attested_by or "",
        attested_at=_utc(row.attested_at),
        anchor_tx_hash=row.anchor_tx_hash,
        created_at=_utc(row.created_at),
    )


def _reservation(row: Row[Any]) -> Reservation:
    cancellation = None
    if row.cancelled_at is not None:
        cancellation = Cancellation(
            cancelled_by=row.cancelled_by or "",
            cancelled_at=_utc_req(row.cancelled_at),
            reason=row.cancel_reason or "",
            outcome=RefundOutcome(row.refund_outcome),
            refund=Money(row.cost_currency, row.refund_minor or 0),
        )
    return Reservation(
        id=row.id,
        space_id=row.space_id,
        tutor_id=row.tutor_id,
        student_id=row.student_id,
        start_time=_utc_req(row.start_time),
        end_time=_utc_req(row.end_time),
        status=ReservationStatus(row.status),
        total_cost=Money(row.cost_currency, row.cost_minor),
        safety_requirements=tuple(row.safety_requirements),
        created_by=row.created_by,
        created_at=_utc_req(row.created_at),
        updated_at=_utc_req(row.updated_at),
        tutor_session_id=row.tutor_session_id or "",
        cancellation=cancellation,
        request_id=row.request_id or "",
    )


def _session(row: Row[Any]) -> TutorSession:
    return TutorSession(
        id=row.id,
        tutor_id=row.tutor_id,
        student_id=row.student_id,
        space_id=row.space_id,
        reservation_id=row.reservation_id,
        start_time=_utc_req(row.start_time),
        end_time=_utc_req(row.end_time),
        subject=row.subject,
        class_id=row.class_id,
        status=TutorSessionStatus(row.status),
        created_at=_utc_req(row.created_at),
        learning_session_id=row.learning_session_id,
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
        created_at=_utc_req(row.created_at),
    )


def _after(time_col: Any, id_col: Any, cursor: tuple[datetime, str] | None) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after (time, id) in ascending order."""
    if cursor is None:
        return and_(True)
    when, row_id = cursor
    return or_(time_col > when, and_(time_col == when, id_col > row_id))


def _before(time_col: Any, id_col: Any, cursor: tuple[datetime, str] | None) -> ColumnElement[bool]:
    if cursor is None:
        return and_(True)
    when, row_id = cursor
    return or_(time_col < when, and_(time_col == when, id_col < row_id))


# -- repository -----------------------------------------------------------------------------


class MarketplaceRepository:
    """Queries over one session (one transaction for writes)."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.session = session
        self.dialect = dialect

    # -- spaces ---------------------------------------------------------------------------

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
        certs = await self.certifications_of([space_id])
        return _space(row, certs.get(space_id, []))

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
        query = select(spaces).where(_after(spaces.c.created_at, spaces.c.id, cursor))
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
        certs = await self.certifications_of([r.id for r in rows])
        return [_space(r, certs.get(r.id, [])) for r in rows]

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

    # -- certifications -------------------------------------------------------------------

    async def certifications_of(self, space_ids: Sequence[str]) -> dict[str, list[Certification]]:
        if not space_ids:
            return {}
        query = (
            select(certifications)
            .where(certifications.c.space_id.in_(list(space_ids)))
            .order_by(certifications.c.created_at, certifications.c.id)
        )
        found: dict[str, list[Certification]] = {}
        for row in (await self.session.execute(query)).all():
            found.setdefault(row.space_id, []).append(_certification(row))
        return found

    async def insert_certification(self, cert: Certification, request_id: str) -> None:
        await self.session.execute(
            insert(certifications).values(
                id=cert.id,
                space_id=cert.space_id,
                name=cert.name,
                issuer=cert.issuer,
                reference=cert.reference,
                valid_until=cert.valid_until,
                child_protection=False,
                attested_by=None,
                attested_at=None,
                anchor_tx_hash="",
                request_id=request_id or None,
                created_at=cert.created_at,
            )
        )

    async def certification_id_by_request(self, space_id: str, request_id: str) -> str | None:
        query = select(certifications.c.id).where(
            certifications.c.space_id == space_id, certifications.c.request_id == request_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def attest_certification(
        self, cert_id: str, *, by: str, at: datetime, child_protection: bool
    ) -> None:
        await self.session.execute(
            update(certifications)
            .where(certifications.c.id == cert_id)
            .values(attested_by=by, attested_at=at, child_protection=child_protection)
        )

    async def clear_attestations(self, space_id: str) -> None:
        await self.session.execute(
            update(certifications)
            .where(certifications.c.space_id == space_id)
            .values(attested_by=None, attested_at=None, child_protection=False)
        )

    # -- reservations ---------------------------------------------------------------------

    async def insert_reservation(self, r: Reservation) -> None:
        """May raise the database's no-overlap violation (see NO_OVERLAP_CONSTRAINT)."""
        await self.session.execute(
            insert(reservations).values(
                id=r.id,
                space_id=r.space_id,
                tutor_id=r.tutor_id,
                student_id=r.student_id,
                start_time=r.start_time,
                end_time=r.end_time,
                status=str(r.status),
                cost_currency=r.total_cost.currency,
                cost_minor=r.total_cost.amount_minor,
                safety_requirements=list(r.safety_requirements),
                tutor_session_id=r.tutor_session_id or None,
                created_by=r.created_by,
                request_id=r.request_id or None,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
        )

    async def get_reservation(
        self, reservation_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        query = select(reservations).where(reservations.c.id == reservation_id)
        if for_update and self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _reservation(row) if row is not None else None

    async def reservation_by_request(self, created_by: str, request_id: str) -> Reservation | None:
        query = select(reservations).where(
            reservations.c.created_by == created_by, reservations.c.request_id == request_id
        )
        row = (await self.session.execute(query)).first()
        return _reservation(row) if row is not None else None

    async def update_reservation(self, r: Reservation) -> None:
        c = r.cancellation
        await self.session.execute(
            update(reservations)
            .where(reservations.c.id == r.id)
            .values(
                status=str(r.status),
                updated_at=r.updated_at,
                cancelled_by=c.cancelled_by if c else None,
                cancelled_at=c.cancelled_at if c else None,
                cancel_reason=c.reason if c else None,
                refund_outcome=str(c.outcome) if c else None,
                refund_minor=c.refund.amount_minor if c else None,
            )
        )

    async def active_intervals(
        self, space_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """Active reservations overlapping [start, end), per space."""
        if not space_ids:
            return {}
        query = select(
            reservations.c.space_id, reservations.c.start_time, reservations.c.end_time
        ).where(
            reservations.c.space_id.in_(list(space_ids)),
            reservations.c.status.in_([str(s) for s in ACTIVE_STATUSES]),
            reservations.c.start_time < end,
            reservations.c.end_time > start,
        )
        found: dict[str, list[tuple[datetime, datetime]]] = {}
        for row in (await self.session.execute(query)).all():
            found.setdefault(row.space_id, []).append(
                (_utc_req(row.start_time), _utc_req(row.end_time))
            )
        return found

    async def list_reservations(
        self,
        *,
        space_id: str = "",
        participant: str = "",
        statuses: Iterable[str] = (),
        window: tuple[datetime, datetime] | None = None,
        cursor: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Reservation]:
        t = reservations
        query = select(t).where(_after(t.c.start_time, t.c.id, cursor))
        if space_id:
            query = query.where(t.c.space_id == space_id)
        if participant:
            query = query.where(
                or_(
                    t.c.tutor_id == participant,
                    t.c.student_id == participant,
                    t.c.created_by == participant,
                )
            )
        wanted = list(statuses)
        if wanted:
            query = query.where(t.c.status.in_(wanted))
        if window is not None:
            query = query.where(t.c.start_time < window[1], t.c.end_time > window[0])
        query = query.order_by(t.c.start_time, t.c.id).limit(limit)
        return [_reservation(r) for r in (await self.session.execute(query)).all()]

    # -- tutor sessions -------------------------------------------------------------------

    async def insert_session(self, s: TutorSession) -> None:
        await self.session.execute(
            insert(tutor_sessions).values(
                id=s.id,
                tutor_id=s.tutor_id,
                student_id=s.student_id,
                space_id=s.space_id,
                reservation_id=s.reservation_id,
                start_time=s.start_time,
                end_time=s.end_time,
                subject=s.subject,
                class_id=s.class_id,
                status=str(s.status),
                learning_session_id=s.learning_session_id,
                created_at=s.created_at,
                updated_at=s.created_at,
            )
        )

    async def get_session(self, session_id: str) -> TutorSession | None:
        row = (
            await self.session.execute(
                select(tutor_sessions).where(tutor_sessions.c.id == session_id)
            )
        ).first()
        return _session(row) if row is not None else None

    async def set_session_status(self, session_id: str, status: str, now: datetime) -> None:
        await self.session.execute(
            update(tutor_sessions)
            .where(tutor_sessions.c.id == session_id)
            .values(status=status, updated_at=now)
        )

    async def list_sessions(
        self,
        *,
        tutor_id: str = "",
        student_id: str = "",
        space_id: str = "",
        participant: str = "",
        statuses: Iterable[str] = (),
        cursor: tuple[datetime, str] | None,
        limit: int,
    ) -> list[TutorSession]:
        t = tutor_sessions
        query = select(t).where(_after(t.c.start_time, t.c.id, cursor))
        if tutor_id:
            query = query.where(t.c.tutor_id == tutor_id)
        if student_id:
            query = query.where(t.c.student_id == student_id)
        if space_id:
            query = query.where(t.c.space_id == space_id)
        if participant:
            query = query.where(or_(t.c.tutor_id == participant, t.c.student_id == participant))
        wanted = list(statuses)
        if wanted:
            query = query.where(t.c.status.in_(wanted))
        query = query.order_by(t.c.start_time, t.c.id).limit(limit)
        return [_session(r) for r in (await self.session.execute(query)).all()]

    # -- ratings --------------------------------------------------------------------------

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
            .where(t.c.space_id == space_id, _before(t.c.created_at, t.c.id, cursor))
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(limit)
        )
        return [_rating(r) for r in (await self.session.execute(query)).all()]
