"""gRPC: tutorial and study session RPCs and their encoders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import ValidationError
from services.kit.invitations.rpc import invitation_to_pb
from services.learning.sessions.storage import StudySessionRecord, TutorialSessionRecord
from services.learning.statements.servicer import unset_as_none

if TYPE_CHECKING:
    from services.learning.service import LearningService

_SESSION_TO_PB = {
    "human": pb.SessionType.HUMAN,
    "ai": pb.SessionType.AI,
    "group": pb.SessionType.GROUP,
}
_SESSION_FROM_PB = {int(v): k for k, v in _SESSION_TO_PB.items()}


class SessionsServicer:
    service: LearningService

    async def create_tutorial_session(
        self, create_tutorial_session_request: pb.CreateTutorialSessionRequest
    ) -> pb.CreateTutorialSessionResponse:
        r = create_tutorial_session_request
        kind = _SESSION_FROM_PB.get(int(r.session_type))
        if kind is None:
            raise ValidationError("session_type", "must be HUMAN, AI or GROUP")
        session = await self.service.sessions.create_tutorial_session(
            current_principal(),
            tutor_kind=kind,
            student_ids=list(r.student_ids),
            tutor_id=r.tutor_id,
            class_id=r.class_id,
            topic=r.topic,
            scheduled_at=unset_as_none(r.scheduled_at),
            request_id=r.request_id,
        )
        return pb.CreateTutorialSessionResponse(session=tutorial_to_pb(session))

    async def get_tutorial_session(
        self, get_tutorial_session_request: pb.GetTutorialSessionRequest
    ) -> pb.GetTutorialSessionResponse:
        session = await self.service.sessions.get_tutorial_session(
            current_principal(), get_tutorial_session_request.session_id
        )
        return pb.GetTutorialSessionResponse(session=tutorial_to_pb(session))

    async def list_tutorial_sessions(
        self, list_tutorial_sessions_request: pb.ListTutorialSessionsRequest
    ) -> pb.ListTutorialSessionsResponse:
        r = list_tutorial_sessions_request
        page = await self.service.sessions.list_tutorial_sessions(
            current_principal(),
            class_id=r.class_id,
            tutor_id=r.tutor_id,
            student_id=r.student_id,
            requested=r.page_size,
            token=r.page_token,
        )
        return pb.ListTutorialSessionsResponse(
            sessions=[tutorial_to_pb(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def start_tutorial_session(
        self, start_tutorial_session_request: pb.StartTutorialSessionRequest
    ) -> pb.StartTutorialSessionResponse:
        session = await self.service.sessions.start_tutorial_session(
            current_principal(), start_tutorial_session_request.session_id
        )
        return pb.StartTutorialSessionResponse(session=tutorial_to_pb(session))

    async def end_tutorial_session(
        self, end_tutorial_session_request: pb.EndTutorialSessionRequest
    ) -> pb.EndTutorialSessionResponse:
        session = await self.service.sessions.end_tutorial_session(
            current_principal(), end_tutorial_session_request.session_id
        )
        return pb.EndTutorialSessionResponse(session=tutorial_to_pb(session))

    async def start_study_session(
        self, start_study_session_request: pb.StartStudySessionRequest
    ) -> pb.StartStudySessionResponse:
        r = start_study_session_request
        session = await self.service.sessions.start_study_session(
            current_principal(), r.class_id, r.topic, r.request_id
        )
        return pb.StartStudySessionResponse(session=study_to_pb(session))

    async def end_study_session(
        self, end_study_session_request: pb.EndStudySessionRequest
    ) -> pb.EndStudySessionResponse:
        session = await self.service.sessions.end_study_session(
            current_principal(), end_study_session_request.session_id
        )
        return pb.EndStudySessionResponse(session=study_to_pb(session))

    async def get_study_session(
        self, get_study_session_request: pb.GetStudySessionRequest
    ) -> pb.GetStudySessionResponse:
        session = await self.service.sessions.get_study_session(
            current_principal(), get_study_session_request.session_id
        )
        return pb.GetStudySessionResponse(session=study_to_pb(session))

    async def list_study_sessions(
        self, list_study_sessions_request: pb.ListStudySessionsRequest
    ) -> pb.ListStudySessionsResponse:
        r = list_study_sessions_request
        page = await self.service.sessions.list_study_sessions(
            current_principal(), r.learner_id, r.class_id, r.page_size, r.page_token
        )
        return pb.ListStudySessionsResponse(
            sessions=[study_to_pb(s) for s in page.items], next_page_token=page.next_page_token
        )


def tutorial_to_pb(session: TutorialSessionRecord) -> pb.TutorialSession:
    message = pb.TutorialSession(
        id=session.id,
        class_id=session.class_id or "",
        tutor_id=session.tutor_id,
        student_ids=list(session.student_ids),
        session_type=pb.SessionType(_SESSION_TO_PB[session.tutor_kind]),
        topic=session.topic,
        interaction_count=session.interaction_count,
        created_at=session.created_at,
        invitations=[invitation_to_pb(i) for i in session.invitations],
    )
    if session.scheduled_at is not None:
        message.scheduled_at = session.scheduled_at
    if session.started_at is not None:
        message.started_at = session.started_at
    if session.ended_at is not None:
        message.ended_at = session.ended_at
    return message


def study_to_pb(session: StudySessionRecord) -> pb.StudySession:
    message = pb.StudySession(
        id=session.id,
        learner_id=session.learner_id,
        class_id=session.class_id or "",
        topic=session.topic,
        started_at=session.started_at,
        interaction_count=session.interaction_count,
    )
    if session.ended_at is not None:
        message.ended_at = session.ended_at
    return message
