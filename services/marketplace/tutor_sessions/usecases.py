"""Tutor session use cases: booked by the tutor (role tutor) or an admin, with its
reservation; completed by the tutor (with the reservation, once every invitation is
accepted); cancelled by either participant, the owner or an admin (with the reservation);
read by its tutor, its student, the space owner or an admin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.kit.auth import Principal, Role
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError
from services.kit.invitations import InvitationKind
from services.kit.paging import Page, page_size
from services.marketplace.common.domain import (
    decode_cursor,
    optional_id,
    page_of,
    require_id,
    validate_request_id,
    validate_text,
)
from services.marketplace.common.usecases import MarketplaceContext
from services.marketplace.invitations.consent import student_consent, with_session_consent
from services.marketplace.reservations.domain import MAX_REASON, Reservation, ReservationInput
from services.marketplace.reservations.usecases import Reservations, participants_for
from services.marketplace.tutor_sessions.domain import (
    MAX_SUBJECT,
    TOPIC_TUTOR_SESSION_COMPLETED,
    SessionInput,
    TutorSession,
    TutorSessionStatus,
    session_event,
)


class TutorSessions:
    def __init__(self, ctx: MarketplaceContext, reservations: Reservations) -> None:
        self.ctx = ctx
        self.reservations = reservations

    async def book_tutor_session(
        self, principal: Principal, data: SessionInput
    ) -> tuple[TutorSession, Reservation]:
        tutor, _ = participants_for(principal, data.tutor_id, "")
        student = require_id(data.student_id, "student_id")
        if student == tutor:
            raise ValidationError("student_id", "must differ from tutor_id")
        if principal.is_admin:
            pass
        elif principal.user_id != tutor:
            raise PermissionDenied("only the tutor (or an admin) books a tutor session")
        elif not principal.has_role(Role.TUTOR):
            raise PermissionDenied("requires role tutor")
        subject = validate_text(data.subject, "subject", maximum=MAX_SUBJECT, required=True)
        class_id = optional_id(data.class_id, "class_id")
        request_id = validate_request_id(data.request_id)
        reservation, session = await self.reservations.book(
            principal,
            ReservationInput(
                space_id=data.space_id,
                tutor_id=tutor,
                student_id=student,
                start_time=data.start_time,
                end_time=data.end_time,
                safety_requirements=data.safety_requirements,
                # Its own namespace: never collides with a CreateReservation request_id.
                request_id=f"tutor-session:{request_id}" if request_id else "",
            ),
            tutor,
            student,
            subject=subject,
            class_id=class_id,
        )
        if session is None:
            raise ValidationError("request_id", "was already used for a plain reservation")
        return session, reservation

    async def complete_tutor_session(self, principal: Principal, session_id: str) -> TutorSession:
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            session = await self.ctx.tutor_session(tx.repo, session_id)
            if principal.user_id != session.tutor_id and not principal.is_admin:
                raise PermissionDenied("only the session's tutor may complete it")
            if session.status is TutorSessionStatus.COMPLETED:
                [session] = await with_session_consent(
                    self.ctx.invitations, tx.repo.session, [session]
                )
                return session  # a retry
            if session.status is TutorSessionStatus.CANCELLED:
                raise FailedPrecondition("the session was cancelled")
            r = await self.ctx.reservation(tx.repo, session.reservation_id)
            space = await self.ctx.space(tx.repo, r.space_id, "session_id")
            await self.reservations.complete_in(tx, r, space)
            await tx.repo.set_session_status(session.id, TutorSessionStatus.COMPLETED, now)
            [completed] = await with_session_consent(
                self.ctx.invitations,
                tx.repo.session,
                [replace(session, status=TutorSessionStatus.COMPLETED)],
            )
            invitation = await self.ctx.invitations.find(
                tx.repo.session, InvitationKind.TUTOR_SESSION, session.id, session.student_id
            )
            await tx.emit(
                session_event(
                    TOPIC_TUTOR_SESSION_COMPLETED,
                    completed,
                    now,
                    principal,
                    student_consent=student_consent(r, invitation),
                )
            )
            return completed

    async def cancel_tutor_session(
        self, principal: Principal, session_id: str, reason: str
    ) -> tuple[TutorSession, Reservation]:
        reason = validate_text(reason, "reason", maximum=MAX_REASON)
        async with self.ctx.write() as tx:
            session = await self.ctx.tutor_session(tx.repo, session_id)
            r = await self.ctx.reservation(tx.repo, session.reservation_id)
            if session.status is TutorSessionStatus.COMPLETED:
                raise FailedPrecondition("a completed session cannot be cancelled")
            cancelled, updated = await self.reservations.cancel_in(tx, principal, r, reason)
            return updated or session, cancelled

    async def get_tutor_session(self, principal: Principal, session_id: str) -> TutorSession:
        async with self.ctx.read() as repo:
            session = await self.ctx.tutor_session(repo, session_id)
            [session] = await with_session_consent(self.ctx.invitations, repo.session, [session])
        if principal.user_id not in (session.tutor_id, session.student_id) and not (
            principal.is_admin
        ):
            raise PermissionDenied("only the session's tutor or student may read it")
        return session

    async def list_tutor_sessions(
        self,
        principal: Principal,
        *,
        tutor_id: str,
        student_id: str,
        space_id: str,
        statuses: Sequence[TutorSessionStatus],
        requested_size: int,
        page_token: str,
    ) -> Page[TutorSession]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        optional_id(tutor_id, "tutor_id")
        optional_id(student_id, "student_id")
        participant = ""
        async with self.ctx.read() as repo:
            if space_id:
                space = await self.ctx.space(repo, space_id, "space_id")
                if principal.user_id != space.owner_id and not principal.is_admin:
                    participant = principal.user_id
            elif principal.user_id not in (tutor_id, student_id) and not principal.is_admin:
                participant = principal.user_id
            found = await repo.list_sessions(
                tutor_id=tutor_id,
                student_id=student_id,
                space_id=space_id,
                participant=participant,
                statuses=[str(s) for s in statuses],
                cursor=cursor,
                limit=size + 1,
            )
            found = await with_session_consent(self.ctx.invitations, repo.session, found)
        return page_of(found, size, lambda s: (s.start_time, s.id))
