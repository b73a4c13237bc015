"""Tutorial and study session use cases.

Authorization: tutorial sessions are planned by their (human) tutor, or by the student
for an AI tutor; a session inside a class only by the class's owner (its course's
instructor, or the creator of a standalone class) or an admin. Naming students invites
them (issue 9, `services.learning.sessions.consent`): they accept or decline. The tutor
starts a session (the student, for an AI tutor); any participant ends it. Participants
(invited students included), the course's instructor and admins see a session. Study
sessions belong to their learner, inside a class only one they take part in.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, ValidationError
from services.kit.events.outbox import enqueue
from services.kit.idempotency import Replayed
from services.kit.invitations import Invitation, InvitationStatus
from services.kit.invitations.rpc import list_page
from services.kit.paging import Page, page_size
from services.learning.common.storage import (
    RequestKeys,
    decode_cursor,
    encode_cursor,
    outbox,
    query_scope,
)
from services.learning.common.usecases import MAX_LIST_PAGE, LearningContext
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.sessions import domain as sd
from services.learning.sessions.consent import (
    KIND,
    agreed_students,
    class_owner,
    invite_students,
    learning_invitations,
    read_scope,
    takes_part,
)
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
        self.invitations = learning_invitations()

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
        session_id = str(uuid.uuid4())
        try:
            async with self.ctx.db.transaction() as s:
                if request_id:
                    await RequestKeys(s).claim(
                        caller.user_id, "create_tutorial_session", request_id, session_id, now
                    )
                klass = await load_class(s, class_id)
                owner = await class_owner(s, klass.id) if klass is not None else None
                if klass is not None and not caller.is_admin and owner != caller.user_id:
                    raise PermissionDenied(
                        "only the class's instructor (or an admin) attaches sessions to it"
                    )
                session = sd.TutorialSession.start(
                    id=session_id,
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
                invited = await invite_students(
                    self.invitations, s, caller, session.id, session.student_ids, now
                )
        except Replayed as first:  # a concurrent retry committed first
            return await self.get_tutorial_session(caller, str(first.result))
        if invited:
            self.ctx.notify()
        return replace(record, invitations=invited)

    async def _views(
        self, s: AsyncSession, rows: Sequence[TutorialSessionRecord]
    ) -> list[TutorialSessionRecord]:
        ids = [r.id for r in rows]
        students = await SessionRepository(s).participants(ids)
        counts = await StatementRepository(s).count_interactions_by("tutorial_session_id", ids)
        return [
            replace(
                r,
                student_ids=students.get(r.id, []),
                interaction_count=counts.get(r.id, 0),
                invitations=await self.invitations.of_subject(s, KIND, r.id),
            )
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
        size = page_size(requested, maximum=MAX_LIST_PAGE)
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

    async def read_scope(self, caller: Principal, learner_id: str) -> tuple[str, ...] | None:
        """What of `learner_id`'s record the caller reads: all (None) or the interactions
        of these tutorial sessions (see `consent.read_scope`)."""
        async with self.ctx.db.session() as s:
            return await read_scope(self.invitations, s, caller, learner_id)

    async def agreed_students(self, s: AsyncSession, session_id: str, created_by: str) -> set[str]:
        return await agreed_students(self.invitations, s, session_id, created_by)

    async def takes_part(self, s: AsyncSession, caller: Principal, class_id: str) -> bool:
        return await takes_part(self.invitations, s, caller, class_id)

    # -- invitations (issue 9) -------------------------------------------------------------

    async def list_invitations(
        self,
        caller: Principal,
        *,
        as_inviter: bool,
        statuses: Sequence[InvitationStatus],
        requested_size: int,
        page_token: str,
    ) -> tuple[list[Invitation], str]:
        async with self.ctx.db.session() as s:
            return await list_page(
                self.invitations,
                s,
                caller,
                as_inviter=as_inviter,
                statuses=statuses,
                requested_size=requested_size,
                page_token=page_token,
            )

    async def respond_to_invitation(
        self, caller: Principal, invitation_id: str, accept: bool
    ) -> Invitation:
        """The student's answer; what it allows is computed from it on every access, so a
        decline (also after accepting) ends the tutor's access at once."""
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as s:
            invitation, changed = await self.invitations.respond(
                s, invitation_id, caller.user_id, accept, now
            )
            if changed:
                await enqueue(s, outbox, self.invitations.event(invitation, now))
        if changed:
            self.ctx.notify()
        return invitation

    # -- study sessions ---------------------------------------------------------------------

    async def start_study_session(
        self, caller: Principal, class_id: str = "", topic: str = "", request_id: str = ""
    ) -> StudySessionRecord:
        replay = await self.ctx.replay(caller, "start_study_session", request_id)
        if replay is not None:
            return await self.get_study_session(caller, replay)
        now = self.ctx.clock.now()
        session_id = str(uuid.uuid4())
        try:
            async with self.ctx.db.transaction() as s:
                if request_id:
                    await RequestKeys(s).claim(
                        caller.user_id, "start_study_session", request_id, session_id, now
                    )
                klass = await load_class(s, class_id)
                if klass is not None and not await self.takes_part(s, caller, klass.id):
                    raise PermissionDenied("you may study in a class only when you take part in it")
                session = sd.StudySession.start(
                    id=session_id,
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
        except Replayed as first:  # a concurrent retry committed first
            return await self.get_study_session(caller, str(first.result))
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
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("study", learner, class_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await SessionRepository(s).page_studies(learner, class_id, size, cursor)
            counts = await StatementRepository(s).count_interactions_by(
                "study_session_id", [r.id for r in rows]
            )
        items = [replace(r, interaction_count=counts.get(r.id, 0)) for r in rows]
        return Page(items, encode_cursor(nxt, scope) if nxt else "")
