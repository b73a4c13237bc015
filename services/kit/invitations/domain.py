"""Consent (issue 9), once for every service: naming someone as a participant of
something (the student of a tutorial session, a reservation or a tutor session) invites
them, and only their answer lets the organizer see or record anything of them.

Plain types and the answering rule, no I/O. Each service keeps its invitations in its own
schema (`services.kit.invitations.storage`) and decides what an answer changes in its own
objects (a declined reservation is cancelled...); this module decides who may answer and
which answers are allowed.

Lifecycle: PENDING -> ACCEPTED | DECLINED by the invitee; ACCEPTED -> DECLINED (consent
withdrawn); PENDING | ACCEPTED -> CANCELLED when the organizer cancels the subject.
DECLINED and CANCELLED are final: a new invitation is a new subject. Answering twice the
same way is a no-op (clients retry).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError

ROLE_STUDENT = "student"
ROLE_TUTOR = "tutor"
MAX_ID = 64


class InvitationKind(enum.StrEnum):
    TUTORIAL_SESSION = "tutorial_session"
    RESERVATION = "reservation"
    TUTOR_SESSION = "tutor_session"


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (InvitationStatus.DECLINED, InvitationStatus.CANCELLED)


OPEN_STATUSES = (InvitationStatus.PENDING, InvitationStatus.ACCEPTED)


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    kind: InvitationKind
    subject_id: str
    inviter_id: str
    invitee_id: str
    role: str
    status: InvitationStatus
    created_at: datetime
    responded_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        return self.status is InvitationStatus.ACCEPTED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "subject_id": self.subject_id,
            "inviter_id": self.inviter_id,
            "invitee_id": self.invitee_id,
            "role": self.role,
            "status": str(self.status),
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "responded_at": (
                self.responded_at.astimezone(UTC).isoformat() if self.responded_at else None
            ),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Invitation:
        responded = data.get("responded_at")
        return Invitation(
            id=str(data["id"]),
            kind=InvitationKind(data["kind"]),
            subject_id=str(data["subject_id"]),
            inviter_id=str(data["inviter_id"]),
            invitee_id=str(data["invitee_id"]),
            role=str(data["role"]),
            status=InvitationStatus(data["status"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            responded_at=datetime.fromisoformat(responded) if responded else None,
        )


def new_invitation_id(service: str) -> str:
    """`inv-<service>-<hex>`: the gateway routes an answer to the service by its id."""
    return f"inv-{service}-{uuid.uuid4().hex}"


def owning_service(invitation_id: str) -> str | None:
    """The service an invitation id belongs to, or None when it is not one."""
    parts = invitation_id.split("-")
    if len(parts) != 3 or parts[0] != "inv" or not parts[1] or not parts[2]:
        return None
    return parts[1]


def check_invitation_id(value: str, field: str = "invitation_id") -> str:
    if not value:
        raise ValidationError(field, "is required")
    if len(value) > MAX_ID or owning_service(value) is None:
        raise ValidationError(field, "is not an invitation id")
    return value


def answer(invitation: Invitation, caller_id: str, accept: bool, now: datetime) -> Invitation:
    """The invitation after `caller_id` answers it; the same invitation for a repeated
    answer. Only the invitee answers; a declined or cancelled invitation stays so."""
    if caller_id != invitation.invitee_id:
        raise PermissionDenied("only the invited person may answer an invitation")
    wanted = InvitationStatus.ACCEPTED if accept else InvitationStatus.DECLINED
    if invitation.status is wanted:
        return invitation
    if invitation.status is InvitationStatus.CANCELLED:
        raise FailedPrecondition("the invitation was cancelled by its organizer")
    if invitation.status is InvitationStatus.DECLINED:
        raise FailedPrecondition(
            "the invitation was declined; ask the organizer to invite you again"
        )
    return replace(invitation, status=wanted, responded_at=now)


def encode_cursor(invitation: Invitation) -> str:
    raw = json.dumps([invitation.created_at.astimezone(UTC).isoformat(), invitation.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str] | None:
    """Keyset cursor: (created_at, id) of the last invitation of the previous page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when_text, row_id = json.loads(raw)
        when = datetime.fromisoformat(when_text)
        if not isinstance(row_id, str) or when.tzinfo is None:
            raise ValueError(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValidationError("page_token", "malformed page token") from exc
    return when, row_id
