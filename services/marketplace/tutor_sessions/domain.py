"""Tutor sessions: a tutor teaching a student in a space, held by a reservation (booked,
cancelled and completed with it). Plain types and rules, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.kit.auth import Principal
from services.kit.events import Event
from services.kit.invitations import InvitationStatus
from services.marketplace.common.domain import iso

MAX_SUBJECT = 200

TOPIC_TUTOR_SESSION_BOOKED = "marketplace.tutor_session_booked"
TOPIC_TUTOR_SESSION_COMPLETED = "marketplace.tutor_session_completed"
TOPIC_TUTOR_SESSION_CANCELLED = "marketplace.tutor_session_cancelled"


class TutorSessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TutorSession:
    id: str
    tutor_id: str
    student_id: str
    space_id: str
    reservation_id: str
    start_time: datetime
    end_time: datetime
    subject: str
    class_id: str
    status: TutorSessionStatus
    created_at: datetime
    learning_session_id: str = ""
    student_invitation: InvitationStatus | None = None


@dataclass(frozen=True)
class SessionInput:
    space_id: str
    tutor_id: str
    student_id: str
    start_time: datetime | None
    end_time: datetime | None
    subject: str
    class_id: str = ""
    safety_requirements: tuple[str, ...] = ()
    request_id: str = ""


def session_event(
    topic: str, s: TutorSession, now: datetime, by: Principal, *, student_consent: str = ""
) -> Event:
    """The tutor session events. `marketplace.tutor_session_completed` is what the
    learning/passport services turn into an interaction in both passports and what opens
    the reputation rating window; its `student_consent` ("self": the student booked it,
    "accepted": they accepted the invitation) is what reputation checks before opening
    it (a rating needs a completed session both sides agreed to)."""
    return Event(
        topic,
        key=s.id,
        occurred_at=now,
        payload={
            "session_id": s.id,
            "tutor_id": s.tutor_id,
            "student_id": s.student_id,
            "space_id": s.space_id,
            "reservation_id": s.reservation_id,
            "start_time": iso(s.start_time),
            "end_time": iso(s.end_time),
            "subject": s.subject,
            "class_id": s.class_id,
            "status": str(s.status),
            "actor_id": by.user_id,
            "occurred_at": iso(now),
            **({"student_consent": student_consent} if student_consent else {}),
        },
    )
