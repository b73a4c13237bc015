"""Consent in the marketplace (issue 9), on the shared invitation model
(`services.kit.invitations`).

Booking a reservation or a tutor session that names someone other than the booker (the
student, or a tutor a student books) invites them: one invitation per named person, of
kind TUTOR_SESSION (subject: the tutor session) when the reservation holds one, else
RESERVATION (subject: the reservation). Whoever books for themselves needs no invitation.

What an answer changes:
- until every invitation of a reservation is accepted it cannot be completed, so nothing
  about its people is recorded (no completion event: no attendance statements, no
  rating window in reputation, no space rating);
- declining (also after accepting) cancels the reservation and its tutor session, which
  frees the slot;
- cancelling the reservation (anyone allowed to) cancels its open invitations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition
from services.kit.events import Event
from services.kit.invitations import (
    ROLE_STUDENT,
    ROLE_TUTOR,
    Invitation,
    InvitationKind,
    Invitations,
    InvitationStatus,
)
from services.marketplace.common.storage import invitations_table
from services.marketplace.reservations.domain import Reservation
from services.marketplace.tutor_sessions.domain import TutorSession

SERVICE = "marketplace"


def marketplace_invitations() -> Invitations:
    return Invitations(invitations_table, service=SERVICE)


def subject_of(r: Reservation) -> tuple[InvitationKind, str]:
    """What a reservation's invitations invite to."""
    if r.tutor_session_id:
        return InvitationKind.TUTOR_SESSION, r.tutor_session_id
    return InvitationKind.RESERVATION, r.id


def named_people(r: Reservation, booker: str) -> list[tuple[str, str]]:
    """(user, role) of everyone the booking names besides the booker."""
    named = [(r.student_id, ROLE_STUDENT), (r.tutor_id, ROLE_TUTOR)]
    return [(user, role) for user, role in named if user and user != booker]


async def invite_named(
    invitations: Invitations,
    session: AsyncSession,
    principal: Principal,
    r: Reservation,
    now: datetime,
) -> list[Event]:
    """Invite everyone the new reservation names besides its booker; their events."""
    kind, subject_id = subject_of(r)
    events = []
    for user, role in named_people(r, principal.user_id):
        invitation, new = await invitations.invite(
            session,
            kind=kind,
            subject_id=subject_id,
            inviter_id=principal.user_id,
            invitee_id=user,
            role=role,
            now=now,
        )
        if new:
            events.append(invitations.event(invitation, now))
    return events


async def require_consent(invitations: Invitations, session: AsyncSession, r: Reservation) -> None:
    """FAILED_PRECONDITION unless everyone the reservation invited has accepted."""
    kind, subject_id = subject_of(r)
    for invitation in await invitations.of_subject(session, kind, subject_id):
        if not invitation.accepted:
            raise FailedPrecondition(
                f"the {invitation.role} has not accepted the invitation "
                f"({invitation.status}): nothing is recorded about them until they do"
            )


async def cancel_invitations(
    invitations: Invitations, session: AsyncSession, r: Reservation, now: datetime
) -> list[Event]:
    kind, subject_id = subject_of(r)
    cancelled = await invitations.cancel_subject(session, kind, subject_id, now)
    return [invitations.event(i, now) for i in cancelled]


async def student_status(
    invitations: Invitations, session: AsyncSession, r: Reservation
) -> InvitationStatus | None:
    if not r.student_id:
        return None
    kind, subject_id = subject_of(r)
    found = await invitations.find(session, kind, subject_id, r.student_id)
    return found.status if found is not None else None


async def with_reservation_consent(
    invitations: Invitations, session: AsyncSession, found: Iterable[Reservation]
) -> list[Reservation]:
    return [
        replace(r, student_invitation=await student_status(invitations, session, r)) for r in found
    ]


async def with_session_consent(
    invitations: Invitations, session: AsyncSession, found: Sequence[TutorSession]
) -> list[TutorSession]:
    out = []
    for s in found:
        invitation = await invitations.find(
            session, InvitationKind.TUTOR_SESSION, s.id, s.student_id
        )
        out.append(replace(s, student_invitation=invitation.status if invitation else None))
    return out


def student_consent(r: Reservation, invitation: Invitation | None) -> str:
    """How the student of a completed session agreed: "self" (booked it), "accepted"."""
    if r.created_by == r.student_id or invitation is None:
        return "self"
    return str(invitation.status)
