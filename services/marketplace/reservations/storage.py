"""The reservations table and its queries (a mixin of `MarketplaceRepository`).

No double booking is a property of the database, not of this module: the migration adds
an exclusion constraint on PostgreSQL and BEFORE INSERT/UPDATE triggers on SQLite over
the active (requested, confirmed) reservations of a space (see the migration and
`NO_OVERLAP_CONSTRAINT`). The repository just inserts and lets the database refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.kit.clock import as_utc
from services.marketplace.common.domain import Money
from services.marketplace.common.storage import Store, filters, in_start_order, metadata, ts
from services.marketplace.reservations.domain import (
    ACTIVE_STATUSES,
    Cancellation,
    RefundOutcome,
    Reservation,
    ReservationStatus,
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("tutor_id", String(64), nullable=False),
    Column("student_id", String(64), nullable=False),
    ts("start_time"),
    ts("end_time"),
    Column("status", String(16), nullable=False),
    Column("cost_currency", String(3), nullable=False),
    Column("cost_minor", BigInteger, nullable=False),
    Column("safety_requirements", SAJSON, nullable=False),
    Column("tutor_session_id", String(36), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("request_id", String(100), nullable=True),
    Column("cancelled_by", String(64), nullable=True),
    ts("cancelled_at", nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("refund_outcome", String(16), nullable=True),
    Column("refund_minor", BigInteger, nullable=True),
    ts("created_at"),
    ts("updated_at"),
    CheckConstraint("end_time > start_time", name="time_order"),
    CheckConstraint(
        "status IN ('requested', 'confirmed', 'cancelled', 'completed')", name="status"
    ),
    UniqueConstraint("created_by", "request_id"),
    Index(None, "space_id", "start_time"),
    Index(None, "tutor_id", "start_time"),
    Index(None, "student_id", "start_time"),
)


def _reservation(row: Row[Any]) -> Reservation:
    cancellation = None
    if row.cancelled_at is not None:
        cancellation = Cancellation(
            cancelled_by=row.cancelled_by or "",
            cancelled_at=as_utc(row.cancelled_at),
            reason=row.cancel_reason or "",
            outcome=RefundOutcome(row.refund_outcome),
            refund=Money(row.cost_currency, row.refund_minor or 0),
        )
    return Reservation(
        id=row.id,
        space_id=row.space_id,
        tutor_id=row.tutor_id,
        student_id=row.student_id,
        start_time=as_utc(row.start_time),
        end_time=as_utc(row.end_time),
        status=ReservationStatus(row.status),
        total_cost=Money(row.cost_currency, row.cost_minor),
        safety_requirements=tuple(row.safety_requirements),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        tutor_session_id=row.tutor_session_id or "",
        cancellation=cancellation,
        request_id=row.request_id or "",
    )


class ReservationStore(Store):
    """Queries of the reservations table, over one session (one transaction for writes)."""

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
                (as_utc(row.start_time), as_utc(row.end_time))
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
        conditions = filters(t, statuses, space_id=space_id)
        if participant:
            conditions.append(
                or_(
                    t.c.tutor_id == participant,
                    t.c.student_id == participant,
                    t.c.created_by == participant,
                )
            )
        if window is not None:
            conditions += [t.c.start_time < window[1], t.c.end_time > window[0]]
        query = in_start_order(t, conditions, cursor, limit)
        return [_reservation(r) for r in (await self.session.execute(query)).all()]
