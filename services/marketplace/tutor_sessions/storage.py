"""The tutor sessions table and its queries (a mixin of `MarketplaceRepository`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.kit.clock import as_utc
from services.marketplace.common.storage import Store, filters, in_start_order, metadata, ts
from services.marketplace.tutor_sessions.domain import TutorSession, TutorSessionStatus

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
    ts("start_time"),
    ts("end_time"),
    Column("subject", String(200), nullable=False),
    Column("class_id", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("learning_session_id", String(64), nullable=False, default=""),
    ts("created_at"),
    ts("updated_at"),
    CheckConstraint("status IN ('scheduled', 'completed', 'cancelled')", name="status"),
    Index(None, "tutor_id", "start_time"),
    Index(None, "student_id", "start_time"),
)


def _session(row: Row[Any]) -> TutorSession:
    return TutorSession(
        id=row.id,
        tutor_id=row.tutor_id,
        student_id=row.student_id,
        space_id=row.space_id,
        reservation_id=row.reservation_id,
        start_time=as_utc(row.start_time),
        end_time=as_utc(row.end_time),
        subject=row.subject,
        class_id=row.class_id,
        status=TutorSessionStatus(row.status),
        created_at=as_utc(row.created_at),
        learning_session_id=row.learning_session_id,
    )


class TutorSessionStore(Store):
    """Queries of the tutor sessions table, over one session."""

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
        conditions = filters(
            t, statuses, tutor_id=tutor_id, student_id=student_id, space_id=space_id
        )
        if participant:
            conditions.append(or_(t.c.tutor_id == participant, t.c.student_id == participant))
        query = in_start_order(t, conditions, cursor, limit)
        return [_session(r) for r in (await self.session.execute(query)).all()]
