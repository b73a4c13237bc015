"""Consent, shared by every service that names one person in another's activity
(issue 9): the invitation model (`domain`), its table and operations in a service's own
schema (`storage`), and the three invitation RPCs (`rpc`)."""

from services.kit.invitations.domain import (
    OPEN_STATUSES,
    ROLE_STUDENT,
    ROLE_TUTOR,
    Invitation,
    InvitationKind,
    InvitationStatus,
    owning_service,
)
from services.kit.invitations.storage import Invitations, invitation_table

__all__ = [
    "OPEN_STATUSES",
    "ROLE_STUDENT",
    "ROLE_TUTOR",
    "Invitation",
    "InvitationKind",
    "InvitationStatus",
    "Invitations",
    "invitation_table",
    "owning_service",
]
