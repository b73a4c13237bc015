"""Tutor sessions over GraphQL: booking (with its reservation), completing, cancelling,
reading."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.invitations import InvitationStatus, status_from_pb
from gateway.schema.marketplace.common import enum_name, pb_enums, signed_in
from gateway.schema.marketplace.reservations import Reservation, SafetyRequirement, safety_to_pb
from services.api.keiko.marketplace import v1 as pb


@strawberry.enum
class TutorSessionStatus(enum.Enum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@strawberry.type
class TutorSession:
    id: strawberry.ID
    tutor_id: strawberry.ID
    student_id: strawberry.ID
    space_id: strawberry.ID
    reservation_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    subject: str
    status: TutorSessionStatus
    learning_session_id: strawberry.ID | None
    created_at: datetime
    student_invitation: InvitationStatus | None = strawberry.field(
        description="The student's answer to their invitation; completing needs ACCEPTED."
    )

    @staticmethod
    def from_pb(s: pb.TutorSession) -> TutorSession:
        return TutorSession(
            id=strawberry.ID(s.id),
            tutor_id=strawberry.ID(s.tutor_id),
            student_id=strawberry.ID(s.student_id),
            space_id=strawberry.ID(s.space_id),
            reservation_id=strawberry.ID(s.reservation_id),
            start_time=s.start_time,
            end_time=s.end_time,
            subject=s.subject,
            status=TutorSessionStatus[enum_name(pb.TutorSessionStatus(s.status))],
            learning_session_id=(
                strawberry.ID(s.learning_session_id) if s.learning_session_id else None
            ),
            created_at=s.created_at,
            student_invitation=status_from_pb(s.student_invitation),
        )


@strawberry.type
class TutorSessionPage:
    sessions: list[TutorSession]
    next_page_token: str | None


@strawberry.type
class TutorSessionBooking:
    session: TutorSession
    reservation: Reservation

    @staticmethod
    def from_pb(
        r: pb.BookTutorSessionResponse | pb.CancelTutorSessionResponse,
    ) -> TutorSessionBooking:
        return TutorSessionBooking(
            session=TutorSession.from_pb(r.session), reservation=Reservation.from_pb(r.reservation)
        )


@strawberry.input
class BookTutorSessionInput:
    space_id: strawberry.ID
    student_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    subject: str
    tutor_id: strawberry.ID | None = strawberry.field(default=None, description="Default: you.")
    class_id: strawberry.ID | None = None
    safety_requirements: list[SafetyRequirement] = strawberry.field(default_factory=list)
    request_id: str = ""


@strawberry.type
class TutorSessionsQuery:
    @strawberry.field(description="One tutor session (its tutor or student).")
    async def tutor_session(self, info: Info, id: strawberry.ID) -> TutorSession:
        response = await rpc(
            signed_in(info).get_tutor_session(pb.GetTutorSessionRequest(session_id=str(id)))
        )
        return TutorSession.from_pb(response.session)

    @strawberry.field(description="Tutor sessions, by start time (default: yours).")
    async def tutor_sessions(
        self,
        info: Info,
        tutor_id: strawberry.ID | None = None,
        student_id: strawberry.ID | None = None,
        space_id: strawberry.ID | None = None,
        statuses: list[TutorSessionStatus] | None = None,
        first: int = 20,
        after: str = "",
    ) -> TutorSessionPage:
        response = await rpc(
            signed_in(info).list_tutor_sessions(
                pb.ListTutorSessionsRequest(
                    tutor_id=str(tutor_id or ""),
                    student_id=str(student_id or ""),
                    space_id=str(space_id or ""),
                    statuses=pb_enums(pb.TutorSessionStatus, statuses),
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return TutorSessionPage(
            sessions=[TutorSession.from_pb(s) for s in response.sessions],
            next_page_token=response.next_page_token or None,
        )


@strawberry.type
class TutorSessionsMutation:
    @strawberry.mutation(description="Book a tutor session in a space (the tutor).")
    async def book_tutor_session(
        self, info: Info, input: BookTutorSessionInput
    ) -> TutorSessionBooking:
        response = await rpc(
            signed_in(info).book_tutor_session(
                pb.BookTutorSessionRequest(
                    tutor_id=str(input.tutor_id or ""),
                    student_id=str(input.student_id),
                    space_id=str(input.space_id),
                    start_time=input.start_time,
                    end_time=input.end_time,
                    subject=input.subject,
                    class_id=str(input.class_id or ""),
                    safety_requirements=safety_to_pb(input.safety_requirements),
                    request_id=input.request_id,
                )
            )
        )
        return TutorSessionBooking.from_pb(response)

    @strawberry.mutation(description="Complete a tutor session and its reservation (the tutor).")
    async def complete_tutor_session(self, info: Info, id: strawberry.ID) -> TutorSession:
        response = await rpc(
            signed_in(info).complete_tutor_session(
                pb.CompleteTutorSessionRequest(session_id=str(id))
            )
        )
        return TutorSession.from_pb(response.session)

    @strawberry.mutation(description="Cancel a tutor session and its reservation.")
    async def cancel_tutor_session(
        self, info: Info, id: strawberry.ID, reason: str = ""
    ) -> TutorSessionBooking:
        response = await rpc(
            signed_in(info).cancel_tutor_session(
                pb.CancelTutorSessionRequest(session_id=str(id), reason=reason)
            )
        )
        return TutorSessionBooking.from_pb(response)
