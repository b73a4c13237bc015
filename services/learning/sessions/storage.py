"""Tutorial and study session tables, their records and repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.kit.invitations import Invitation
from services.learning.common.storage import (
    ID,
    Cursor,
    mapping,
    metadata,
    page_rows,
    row_values,
    ts_column,
)
from services.learning.sessions.domain import StudySession, TutorialSession, TutorKind

tutorial_sessions = Table(
    "tutorial_sessions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("class_id", String(ID), ForeignKey("classes.id"), nullable=True),
    Column("tutor_id", String(ID), nullable=False),
    Column("tutor_kind", String(8), nullable=False),
    Column("topic", String(200), nullable=False, default=""),
    Column("created_by", String(ID), nullable=False),
    ts_column("scheduled_at", nullable=True),
    ts_column("started_at", nullable=True),
    ts_column("ended_at", nullable=True),
    ts_column("created_at"),
    Index(None, "class_id", "created_at"),
    Index(None, "tutor_id", "created_at"),
)

# Position 0 is the tutor, 1.. the students in the order given at creation.
tutorial_participants = Table(
    "tutorial_participants",
    metadata,
    Column(
        "session_id",
        String(ID),
        ForeignKey("tutorial_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(ID), primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "user_id"),
)

study_sessions = Table(
    "study_sessions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    Column("class_id", String(ID), ForeignKey("classes.id"), nullable=True),
    Column("topic", String(200), nullable=False, default=""),
    ts_column("started_at"),
    ts_column("ended_at", nullable=True),
    Index(None, "learner_id", "started_at"),
)


@dataclass(frozen=True)
class TutorialSessionRecord:
    id: str
    class_id: str | None
    tutor_id: str
    tutor_kind: str
    topic: str
    created_by: str
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    # Shown with the session, not stored in its row.
    student_ids: list[str] = field(default_factory=list)
    interaction_count: int = 0
    # The students' invitations (issue 9): those named by someone else.
    invitations: list[Invitation] = field(default_factory=list)

    def domain(self) -> TutorialSession:
        """The domain session (only for a started one: `started_at` is required there)."""
        assert self.started_at is not None
        return TutorialSession(
            id=self.id,
            tutor_id=self.tutor_id,
            tutor_kind=TutorKind(self.tutor_kind),
            student_ids=tuple(self.student_ids),
            class_id=self.class_id,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )


@dataclass(frozen=True)
class StudySessionRecord:
    id: str
    learner_id: str
    class_id: str | None
    topic: str
    started_at: datetime
    ended_at: datetime | None
    # Shown with the session, not stored in its row.
    interaction_count: int = 0

    def domain(self) -> StudySession:
        return StudySession(
            id=self.id,
            learner_id=self.learner_id,
            class_id=self.class_id,
            topic=self.topic,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )


def _tutorial(values: dict[str, Any]) -> TutorialSessionRecord:
    return TutorialSessionRecord(**values)


def _study(values: dict[str, Any]) -> StudySessionRecord:
    return StudySessionRecord(**values)


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- tutorial sessions ------------------------------------------------------------------

    async def get_tutorial(self, session_id: str) -> TutorialSessionRecord | None:
        t = tutorial_sessions
        row = (await self.s.execute(select(t).where(t.c.id == session_id))).first()
        return _tutorial(mapping(row)) if row is not None else None

    async def get_tutorials(self, ids: Sequence[str]) -> dict[str, TutorialSessionRecord]:
        """The tutorial sessions with these ids (missing ones left out), in one query."""
        if not ids:
            return {}
        t = tutorial_sessions
        rows = (await self.s.execute(select(t).where(t.c.id.in_(ids)))).all()
        return {r.id: _tutorial(mapping(r)) for r in rows}

    async def insert_tutorial(self, record: TutorialSessionRecord, tutor_id: str) -> None:
        await self.s.execute(
            insert(tutorial_sessions).values(**row_values(record, tutorial_sessions))
        )
        for position, user in enumerate((tutor_id, *record.student_ids)):
            await self.s.execute(
                insert(tutorial_participants).values(
                    session_id=record.id, user_id=user, position=position
                )
            )

    async def update_tutorial(self, session_id: str, **values: Any) -> None:
        t = tutorial_sessions
        await self.s.execute(update(t).where(t.c.id == session_id).values(**values))

    async def page_tutorials(
        self,
        *,
        class_id: str,
        tutor_id: str,
        student_id: str,
        member: str | None,
        limit: int,
        cursor: Cursor | None,
    ) -> tuple[list[TutorialSessionRecord], Cursor | None]:
        """Sessions matching the filters; with `member`, only those it takes part in (as
        tutor or student)."""
        t, p = tutorial_sessions, tutorial_participants
        conditions: list[ColumnElement[bool]] = []
        if class_id:
            conditions.append(t.c.class_id == class_id)
        if tutor_id:
            conditions.append(t.c.tutor_id == tutor_id)
        if student_id:
            conditions.append(
                t.c.id.in_(
                    select(p.c.session_id).where(p.c.user_id == student_id, p.c.position > 0)
                )
            )
        if member is not None:
            conditions.append(t.c.id.in_(select(p.c.session_id).where(p.c.user_id == member)))
        return await page_rows(self.s, t, "created_at", conditions, limit, cursor, _tutorial)

    async def participants(self, session_ids: Sequence[str]) -> dict[str, list[str]]:
        """Students of each tutorial session, in the order given at creation."""
        out: dict[str, list[str]] = {s: [] for s in session_ids}
        if not session_ids:
            return out
        p = tutorial_participants
        query = (
            select(p.c.session_id, p.c.user_id)
            .where(p.c.session_id.in_(session_ids), p.c.position > 0)
            .order_by(p.c.session_id, p.c.position)
        )
        for session_id, user_id in (await self.s.execute(query)).all():
            out[session_id].append(user_id)
        return out

    async def session_ids_of_classes(self, class_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {c: [] for c in class_ids}
        if not class_ids:
            return out
        t = tutorial_sessions
        query = (
            select(t.c.class_id, t.c.id)
            .where(t.c.class_id.in_(class_ids))
            .order_by(t.c.created_at, t.c.id)
        )
        for class_id, session_id in (await self.s.execute(query)).all():
            out[class_id].append(session_id)
        return out

    async def tutored_with(self, tutor_id: str, student_id: str) -> dict[str, str]:
        """The tutorial sessions `tutor_id` runs with `student_id` as a student, each with
        who created it."""
        t, p = tutorial_sessions, tutorial_participants
        query = (
            select(t.c.id, t.c.created_by)
            .join(p, p.c.session_id == t.c.id)
            .where(t.c.tutor_id == tutor_id, p.c.user_id == student_id, p.c.position > 0)
        )
        return {row.id: row.created_by for row in (await self.s.execute(query)).all()}

    async def class_roles(self, user_id: str, class_id: str) -> list[tuple[str, str, int]]:
        """(session id, creator, position) of every tutorial session of `class_id` that
        `user_id` takes part in: position 0 as its tutor, 1.. as a student."""
        t, p = tutorial_sessions, tutorial_participants
        query = (
            select(t.c.id, t.c.created_by, p.c.position)
            .join(p, p.c.session_id == t.c.id)
            .where(t.c.class_id == class_id, p.c.user_id == user_id)
        )
        return [(r.id, r.created_by, r.position) for r in (await self.s.execute(query)).all()]

    async def tutor_of_student(self, tutor_id: str, student_id: str) -> bool:
        """True when `tutor_id` tutors a session that `student_id` is a student of."""
        t, p = tutorial_sessions, tutorial_participants
        query = (
            select(t.c.id)
            .join(p, p.c.session_id == t.c.id)
            .where(t.c.tutor_id == tutor_id, p.c.user_id == student_id, p.c.position > 0)
            .limit(1)
        )
        return (await self.s.execute(query)).first() is not None

    # -- study sessions ---------------------------------------------------------------------

    async def get_study(self, session_id: str) -> StudySessionRecord | None:
        t = study_sessions
        row = (await self.s.execute(select(t).where(t.c.id == session_id))).first()
        return _study(mapping(row)) if row is not None else None

    async def get_studies(self, ids: Sequence[str]) -> dict[str, StudySessionRecord]:
        """The study sessions with these ids (missing ones left out), in one query."""
        if not ids:
            return {}
        t = study_sessions
        rows = (await self.s.execute(select(t).where(t.c.id.in_(ids)))).all()
        return {r.id: _study(mapping(r)) for r in rows}

    async def insert_study(self, record: StudySessionRecord) -> None:
        await self.s.execute(insert(study_sessions).values(**row_values(record, study_sessions)))

    async def update_study(self, session_id: str, **values: Any) -> None:
        t = study_sessions
        await self.s.execute(update(t).where(t.c.id == session_id).values(**values))

    async def page_studies(
        self, learner_id: str, class_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[StudySessionRecord], Cursor | None]:
        t = study_sessions
        conditions = [t.c.learner_id == learner_id]
        if class_id:
            conditions.append(t.c.class_id == class_id)
        return await page_rows(
            self.s, t, "started_at", conditions, limit, cursor, _study, descending=True
        )
