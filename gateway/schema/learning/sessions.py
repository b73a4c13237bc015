"""Tutorial and study sessions over GraphQL: reading, creating, starting and ending them
(a tutorial session's students are invited and take part once they accept, issue 9)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.invitations import Invitation
from gateway.schema.learning.common import SessionType, learning, optional_id, page, when
from gateway.schema.learning.hierarchy import Class, loaders
from services.api.keiko.learning import v1 as pb


@strawberry.type
class TutorialSession:
    id: strawberry.ID
    class_id: strawberry.ID | None
    tutor_id: strawberry.ID
    student_ids: list[strawberry.ID]
    session_type: SessionType
    topic: str
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    interaction_count: int
    created_at: datetime
    invitations: list[Invitation] = strawberry.field(
        description="The invitations of the students named by someone else (issue 9)."
    )

    @strawberry.field(name="class", description="The class the session is held in, if any.")
    async def klass(self, info: Info) -> Class | None:
        if self.class_id is None:
            return None
        return await loaders(info).classes.load(str(self.class_id))

    @staticmethod
    def from_pb(session: pb.TutorialSession) -> TutorialSession:
        return TutorialSession(
            id=strawberry.ID(session.id),
            class_id=optional_id(session.class_id),
            tutor_id=strawberry.ID(session.tutor_id),
            student_ids=[strawberry.ID(s) for s in session.student_ids],
            session_type=SessionType[str(pb.SessionType(session.session_type).name)],
            topic=session.topic,
            scheduled_at=when(session.scheduled_at),
            started_at=when(session.started_at),
            ended_at=when(session.ended_at),
            interaction_count=session.interaction_count,
            created_at=session.created_at,
            invitations=[Invitation.from_pb(i) for i in session.invitations],
        )


@strawberry.type
class StudySession:
    id: strawberry.ID
    learner_id: strawberry.ID
    class_id: strawberry.ID | None
    topic: str
    started_at: datetime
    ended_at: datetime | None
    interaction_count: int

    @strawberry.field(name="class")
    async def klass(self, info: Info) -> Class | None:
        if self.class_id is None:
            return None
        return await loaders(info).classes.load(str(self.class_id))

    @staticmethod
    def from_pb(session: pb.StudySession) -> StudySession:
        return StudySession(
            id=strawberry.ID(session.id),
            learner_id=strawberry.ID(session.learner_id),
            class_id=optional_id(session.class_id),
            topic=session.topic,
            started_at=session.started_at,
            ended_at=when(session.ended_at),
            interaction_count=session.interaction_count,
        )


@strawberry.type
class TutorialSessionConnection:
    nodes: list[TutorialSession]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class StudySessionConnection:
    nodes: list[StudySession]
    end_cursor: str | None
    has_next_page: bool


@strawberry.input
class TutorialSessionInput:
    session_type: SessionType
    student_ids: list[strawberry.ID]
    tutor_id: strawberry.ID | None = None
    class_id: strawberry.ID | None = None
    topic: str = ""
    scheduled_at: datetime | None = None
    request_id: str | None = None


@strawberry.type
class SessionsQuery:
    @strawberry.field
    async def tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).get_tutorial_session(pb.GetTutorialSessionRequest(session_id=str(id)))
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.field(description="Tutorial sessions the caller takes part in.")
    async def tutorial_sessions(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        tutor_id: strawberry.ID | None = None,
        student_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> TutorialSessionConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_tutorial_sessions(
                pb.ListTutorialSessionsRequest(
                    class_id=str(class_id or ""),
                    tutor_id=str(tutor_id or ""),
                    student_id=str(student_id or ""),
                    page_size=first,
                    page_token=after or "",
                )
            )
        )
        cursor, more = page(reply.next_page_token)
        return TutorialSessionConnection(
            nodes=[TutorialSession.from_pb(s) for s in reply.sessions],
            end_cursor=cursor,
            has_next_page=more,
        )

    @strawberry.field(description="The caller's study sessions, newest first.")
    async def study_sessions(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> StudySessionConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_study_sessions(
                pb.ListStudySessionsRequest(
                    class_id=str(class_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = page(reply.next_page_token)
        return StudySessionConnection(
            nodes=[StudySession.from_pb(s) for s in reply.sessions],
            end_cursor=cursor,
            has_next_page=more,
        )


@strawberry.type
class SessionsMutation:
    @strawberry.mutation
    async def create_tutorial_session(
        self, info: Info, input: TutorialSessionInput
    ) -> TutorialSession:
        info.context.require_token()
        request = pb.CreateTutorialSessionRequest(
            class_id=str(input.class_id or ""),
            tutor_id=str(input.tutor_id or ""),
            student_ids=[str(s) for s in input.student_ids],
            session_type=pb.SessionType.from_string(input.session_type.value),
            topic=input.topic,
            request_id=input.request_id or "",
        )
        if input.scheduled_at is not None:
            request.scheduled_at = input.scheduled_at
        reply = await rpc(learning(info).create_tutorial_session(request))
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="Start a tutorial session (its tutor). Idempotent.")
    async def start_tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).start_tutorial_session(
                pb.StartTutorialSessionRequest(session_id=str(id))
            )
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="End a tutorial session (any participant). Idempotent.")
    async def end_tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).end_tutorial_session(pb.EndTutorialSessionRequest(session_id=str(id)))
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="Open a self-study session for the caller.")
    async def start_study_session(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        topic: str = "",
        request_id: str | None = None,
    ) -> StudySession:
        info.context.require_token()
        reply = await rpc(
            learning(info).start_study_session(
                pb.StartStudySessionRequest(
                    class_id=str(class_id or ""), topic=topic, request_id=request_id or ""
                )
            )
        )
        return StudySession.from_pb(reply.session)

    @strawberry.mutation(description="Close one of the caller's study sessions. Idempotent.")
    async def end_study_session(self, info: Info, id: strawberry.ID) -> StudySession:
        info.context.require_token()
        reply = await rpc(
            learning(info).end_study_session(pb.EndStudySessionRequest(session_id=str(id)))
        )
        return StudySession.from_pb(reply.session)
