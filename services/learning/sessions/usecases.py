"""Tutorial and study session use cases.

Authorization: tutorial sessions are planned by their (human) tutor, or by the student
for an AI tutor; the tutor starts them (the student, for an AI tutor); any participant
ends them. Participants, the course's instructor and admins see a session. Study
sessions belong to their learner.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, ValidationError
from services.learning.common.storage import RequestKeys, decode_cursor, encode_cursor, query_scope
from services.learning.common.usecases import MAX_LIST_PAGE, LearningContext, Page, page_size
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.sessions import domain as sd
from services.learning.sessions.storage import (
    SessionRepository,
    StudySessionRecord,
    TutorialSessionRecord,
)
from services.learning.statements.storage import StatementRepository


def check_topic(value: str) -> str:
    text = value.strip()
    if len(text) > h.MAX_TITLE:
        raise ValidationError("topic", f"must be at most {h.MAX_TITLE} characters")
    return text


async def load_class(s: AsyncSession, class_id: str) -> h.Class | None:
    """The class `class_id` names (None for ""); NotFound when it does not exist."""
    if not class_id:
        return None
    row = await HierarchyRepository(s).get_class(class_id)
    if row is None:
        raise NotFound(f"class {class_id} not found")
    return row.domain()


class Sessions:
    def __init__(self, ctx: LearningContext) -> None:
        self.ctx = ctx

    # -- tutorial sessions ------------------------------------------------------------------

    async def create_tutorial_session(
        self,
        caller: Principal,
        *,
        tutor_kind: str,
        student_ids: Sequence[str],
        tutor_id: str = "",
        class_id: str = "",
        topic: str = "",
        scheduled_at: datetime | None = None,
        request_id: str = "",
    ) -> TutorialSessionRecord:
        replay = await self.ctx.replay(caller, "create_tutorial_session", request_id)
        if replay is not None:
            return await self.get_tutorial_session(caller, replay)
        tutor = tutor_id or caller.user_id
        if not caller.is_admin:
            if tutor_kind == sd.TutorKind.AI:
                if list(student_ids) != [caller.user_id]:
                    raise PermissionDenied("a learner plans an AI tutorial session for themself")
                if not tutor_id:
                    raise ValidationError("tutor_id", "names the AI tutor agent")
            elif tutor != caller.user_id:
                raise PermissionDenied("a tutor plans tutorial sessions for themself")
        topic_text = check_topic(topic)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as s:
            klass = await load_class(s, class_id)
            session = sd.TutorialSession.start(
                id=str(uuid.uuid4()),
                tutor_id=tutor,
                tutor_kind=tutor_kind,
                student_ids=list(student_ids),
                clock=self.ctx.clock,
                klass=klass,
            )
            record = TutorialSessionRecord(
                id=session.id,
                class_id=session.class_id,
                tutor_id=session.tutor_id,
                tutor_kind=session.tutor_kind.value,
                topic=topic_text,
                created_by=caller.user_id,
                scheduled_at=scheduled_at,
                started_at=None,
                ended_at=None,
                created_at=now,
                student_ids=list(session.student_ids),
            )
            await SessionRepository(s).insert_tutorial(record, session.tutor_id)
            if request_id:
                await RequestKeys(s).put(
                    caller.user_id, "create_tutorial_session", request_id, session.id, now
                )
        return record

    async def _views(
        self, s: AsyncSession, rows: Sequence[TutorialSessionRecord]
    ) -> list[TutorialSessionRecord]:
        ids = [r.id for r in rows]
        students = await SessionRepository(s).participants(ids)
        counts = await StatementRepository(s).count_interactions_by("tutorial_session_id", ids)
        return [
            replace(r, student_ids=students.get(r.id, []), interaction_count=counts.get(r.id, 0))
            for r in rows
        ]

    async def _tutorial(self, s: AsyncSession, session_id: str) -> TutorialSessionRecord:
        row = await SessionRepository(s).get_tutorial(session_id)
        if row is None:
            raise NotFound(f"tutorial session {session_id} not found")
        return (await self._views(s, [row]))[0]

    async def _may_see_session(
        self, s: AsyncSession, caller: Principal, view: TutorialSessionRecord
    ) -> bool:
        if caller.is_admin or caller.user_id == view.tutor_id:
            return True
        if caller.user_id in view.student_ids:
            return True
        if view.class_id:
            repo = HierarchyRepository(s)
            klass = await repo.get_class(view.class_id)
            if klass and klass.course_id:
                course = await repo.get_course(klass.course_id)
                return course is not None and course.instructor_id == caller.user_id
        return False

    async def get_tutorial_session(
        self, caller: Principal, session_id: str
    ) -> TutorialSessionRecord:
        async with self.ctx.db.session() as s:
            view = await self._tutorial(s, session_id)
            if not await self._may_see_session(s, caller, view):
                raise PermissionDenied("only participants may see this tutorial session")
        return view

    async def list_tutorial_sessions(
        self,
        caller: Principal,
        *,
        class_id: str = "",
        tutor_id: str = "",
        student_id: str = "",
        requested: int = 0,
        token: str = "",
    ) -> Page[TutorialSessionRecord]:
        """Non-admins list only sessions they take part in (as tutor or student)."""
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("tutorial", class_id, tutor_id, student_id, caller.user_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await SessionRepository(s).page_tutorials(
                class_id=class_id,
                tutor_id=tutor_id,
                student_id=student_id,
                member=None if caller.is_admin else caller.user_id,
                limit=size,
                cursor=cursor,
            )
            views = await self._views(s, rows)
        return Page(views, encode_cursor(nxt, scope) if nxt else "")

    async def start_tutorial_session(
        self, caller: Principal, session_id: str
    ) -> TutorialSessionRecord:
        async with self.ctx.db.transaction() as s:
            view = await self._tutorial(s, session_id)
            starter = view.tutor_id
            if view.tutor_kind == sd.TutorKind.AI:
                starter = view.student_ids[0]
            if caller.user_id != starter and not caller.is_admin:
                raise PermissionDenied("only the tutor may start this tutorial session")
            if view.started_at is None:
                if view.ended_at is not None:
                    raise FailedPrecondition("the tutorial session has ended")
                await SessionRepository(s).update_tutorial(
                    session_id, started_at=self.ctx.clock.now()
                )
            view = await self._tutorial(s, session_id)
        return view

    async def end_tutorial_session(
        self, caller: Principal, session_id: str
    ) -> TutorialSessionRecord:
        async with self.ctx.db.transaction() as s:
            view = await self._tutorial(s, session_id)
            participants = [view.tutor_id, *view.student_ids]
            if caller.user_id not in participants and not caller.is_admin:
                raise PermissionDenied("only participants may end this tutorial session")
            if view.ended_at is None:
                if view.started_at is None:
                    raise FailedPrecondition("the tutorial session has not started yet")
                ended = max(self.ctx.clock.now(), view.started_at)
                await SessionRepository(s).update_tutorial(session_id, ended_at=ended)
            view = await self._tutorial(s, session_id)
        return view

    async def may_watch(self, caller: Principal, learner_id: str) -> bool:
        """The learner themself, an admin, or a tutor of one of the learner's sessions."""
        if caller.is_admin or caller.user_id == learner_id:
            return True
        async with self.ctx.db.session() as s:
            return await SessionRepository(s).tutor_of_student(caller.user_id, learner_id)

    # -- study sessions ---------------------------------------------------------------------

    async def start_study_session(
        self, caller: Principal, class_id: str = "", topic: str = "", request_id: str = ""
    ) -> StudySessionRecord:
        replay = await self.ctx.replay(caller, "start_study_session", request_id)
        if replay is not None:
            return await self.get_study_session(caller, replay)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as s:
            klass = await load_class(s, class_id)
            session = sd.StudySession.start(
                id=str(uuid.uuid4()),
                learner_id=caller.user_id,
                topic=topic,
                clock=self.ctx.clock,
                klass=klass,
            )
            record = StudySessionRecord(
                id=session.id,
                learner_id=session.learner_id,
                class_id=session.class_id,
                topic=session.topic,
                started_at=session.started_at,
                ended_at=None,
            )
            await SessionRepository(s).insert_study(record)
            if request_id:
                await RequestKeys(s).put(
                    caller.user_id, "start_study_session", request_id, session.id, now
                )
        return record

    async def _study(
        self, s: AsyncSession, caller: Principal, session_id: str
    ) -> StudySessionRecord:
        row = await SessionRepository(s).get_study(session_id)
        if row is None:
            raise NotFound(f"study session {session_id} not found")
        if row.learner_id != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only the learner may see their study session")
        counts = await StatementRepository(s).count_interactions_by(
            "study_session_id", [session_id]
        )
        return replace(row, interaction_count=counts.get(session_id, 0))

    async def end_study_session(self, caller: Principal, session_id: str) -> StudySessionRecord:
        async with self.ctx.db.transaction() as s:
            view = await self._study(s, caller, session_id)
            if view.learner_id != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the learner may end their study session")
            if view.ended_at is None:
                ended = max(self.ctx.clock.now(), view.started_at)
                await SessionRepository(s).update_study(session_id, ended_at=ended)
            view = await self._study(s, caller, session_id)
        return view

    async def get_study_session(self, caller: Principal, session_id: str) -> StudySessionRecord:
        async with self.ctx.db.session() as s:
            return await self._study(s, caller, session_id)

    async def list_study_sessions(
        self,
        caller: Principal,
        learner_id: str = "",
        class_id: str = "",
        requested: int = 0,
        token: str = "",
    ) -> Page[StudySessionRecord]:
        learner = learner_id or caller.user_id
        if learner != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only the learner may list their study sessions")
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("study", learner, class_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await SessionRepository(s).page_studies(learner, class_id, size, cursor)
            counts = await StatementRepository(s).count_interactions_by(
                "study_session_id", [r.id for r in rows]
            )
        items = [replace(r, interaction_count=counts.get(r.id, 0)) for r in rows]
        return Page(items, encode_cursor(nxt, scope) if nxt else "")
