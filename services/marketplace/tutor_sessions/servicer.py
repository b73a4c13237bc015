"""gRPC: tutor session RPCs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.kit.invitations.rpc import status_to_pb
from services.marketplace.common.servicer import statuses_from_pb, time_from_pb
from services.marketplace.reservations.servicer import reservation_to_pb, safety_from_pb
from services.marketplace.tutor_sessions.domain import (
    SessionInput,
    TutorSession,
    TutorSessionStatus,
)

if TYPE_CHECKING:
    from services.marketplace.service import MarketplaceService

_TO_PB_SESSION_STATUS = {s: pb.TutorSessionStatus.from_string(s.name) for s in TutorSessionStatus}
_FROM_PB_SESSION_STATUS = {int(v): k for k, v in _TO_PB_SESSION_STATUS.items()}


class TutorSessionsServicer:
    service: MarketplaceService

    async def book_tutor_session(
        self, book_tutor_session_request: pb.BookTutorSessionRequest
    ) -> pb.BookTutorSessionResponse:
        caller = current_principal()
        r = book_tutor_session_request
        session, reservation = await self.service.tutor_sessions.book_tutor_session(
            caller,
            SessionInput(
                space_id=r.space_id,
                tutor_id=r.tutor_id,
                student_id=r.student_id,
                start_time=time_from_pb(r.start_time),
                end_time=time_from_pb(r.end_time),
                subject=r.subject,
                class_id=r.class_id,
                safety_requirements=safety_from_pb(r.safety_requirements),
                request_id=r.request_id,
            ),
        )
        return pb.BookTutorSessionResponse(
            session=session_to_pb(session), reservation=reservation_to_pb(reservation)
        )

    async def complete_tutor_session(
        self, complete_tutor_session_request: pb.CompleteTutorSessionRequest
    ) -> pb.CompleteTutorSessionResponse:
        caller = current_principal()
        session = await self.service.tutor_sessions.complete_tutor_session(
            caller, complete_tutor_session_request.session_id
        )
        return pb.CompleteTutorSessionResponse(session=session_to_pb(session))

    async def cancel_tutor_session(
        self, cancel_tutor_session_request: pb.CancelTutorSessionRequest
    ) -> pb.CancelTutorSessionResponse:
        caller = current_principal()
        r = cancel_tutor_session_request
        session, reservation = await self.service.tutor_sessions.cancel_tutor_session(
            caller, r.session_id, r.reason
        )
        return pb.CancelTutorSessionResponse(
            session=session_to_pb(session), reservation=reservation_to_pb(reservation)
        )

    async def get_tutor_session(
        self, get_tutor_session_request: pb.GetTutorSessionRequest
    ) -> pb.GetTutorSessionResponse:
        caller = current_principal()
        session = await self.service.tutor_sessions.get_tutor_session(
            caller, get_tutor_session_request.session_id
        )
        return pb.GetTutorSessionResponse(session=session_to_pb(session))

    async def list_tutor_sessions(
        self, list_tutor_sessions_request: pb.ListTutorSessionsRequest
    ) -> pb.ListTutorSessionsResponse:
        caller = current_principal()
        r = list_tutor_sessions_request
        statuses = statuses_from_pb(r.statuses, _FROM_PB_SESSION_STATUS, "session status")
        page = await self.service.tutor_sessions.list_tutor_sessions(
            caller,
            tutor_id=r.tutor_id,
            student_id=r.student_id,
            space_id=r.space_id,
            statuses=statuses,
            requested_size=r.page_size,
            page_token=r.page_token,
        )
        return pb.ListTutorSessionsResponse(
            sessions=[session_to_pb(s) for s in page.items], next_page_token=page.next_page_token
        )


def session_to_pb(s: TutorSession) -> pb.TutorSession:
    return pb.TutorSession(
        id=s.id,
        tutor_id=s.tutor_id,
        student_id=s.student_id,
        space_id=s.space_id,
        reservation_id=s.reservation_id,
        start_time=s.start_time,
        end_time=s.end_time,
        subject=s.subject,
        status=_TO_PB_SESSION_STATUS[s.status],
        learning_session_id=s.learning_session_id,
        created_at=s.created_at,
        student_invitation=status_to_pb(s.student_invitation),
    )
