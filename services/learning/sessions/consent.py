"""Consent and read scope in learning (issue 9), on the shared invitation model
(`services.kit.invitations`).

Invitations: creating a tutorial session names its students; every student other than
the creator gets an invitation (kind TUTORIAL_SESSION, subject: the session). A student
who plans a session for themselves (an AI tutor) needs none.

A student *agreed* to a session when they created it or accepted its invitation (and did
not decline it since). Until then, and after a decline, the tutor:
- records nothing about them in it (PERMISSION_DENIED);
- reads nothing of theirs (not even what was recorded in the session before a decline);
- gets none of their interactions on a live stream.

Read scope: besides the learner and admins, a tutor reads a learner's interactions only
when they were recorded in a tutorial session that tutor runs and the learner agreed to;
never the learner's other history. (The passport's privacy settings and share links are
how anyone else reads a learner's record.)

Taking part in a class (what lets a learner reference a class in their own study and
interactions): being its owner (the course's instructor, or the creator of a standalone
class), tutoring one of its tutorial sessions, or being a student who agreed to one of
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.events.outbox import enqueue
from services.kit.invitations import ROLE_STUDENT, Invitation, InvitationKind, Invitations
from services.learning.common.storage import invitations_table, outbox
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.sessions.storage import SessionRepository

SERVICE = "learning"
KIND = InvitationKind.TUTORIAL_SESSION


def learning_invitations() -> Invitations:
    return Invitations(invitations_table, service=SERVICE)


async def invite_students(
    invitations: Invitations,
    s: AsyncSession,
    caller: Principal,
    session_id: str,
    student_ids: Sequence[str],
    now: datetime,
) -> list[Invitation]:
    """Invite every student of a new session except its creator; events in the outbox."""
    made = []
    for student in student_ids:
        if student == caller.user_id:
            continue
        invitation, new = await invitations.invite(
            s,
            kind=KIND,
            subject_id=session_id,
            inviter_id=caller.user_id,
            invitee_id=student,
            role=ROLE_STUDENT,
            now=now,
        )
        if new:
            await enqueue(s, outbox, invitations.event(invitation, now))
        made.append(invitation)
    return made


async def agreed_students(
    invitations: Invitations, s: AsyncSession, session_id: str, created_by: str
) -> set[str]:
    """The students of a session who agreed to it: its creator, and those who accepted."""
    agreed = {created_by}
    for invitation in await invitations.of_subject(s, KIND, session_id):
        if invitation.accepted:
            agreed.add(invitation.invitee_id)
    return agreed


async def sessions_in_scope(
    invitations: Invitations, s: AsyncSession, tutor_id: str, learner_id: str
) -> tuple[str, ...]:
    """The tutorial sessions whose interactions `tutor_id` may read of `learner_id`: those
    they run with the learner, which the learner agreed to."""
    runs = await SessionRepository(s).tutored_with(tutor_id, learner_id)
    if not runs:
        return ()
    accepted = await invitations.accepted_subjects(s, learner_id, KIND)
    return tuple(
        sorted(sid for sid, creator in runs.items() if creator == learner_id or sid in accepted)
    )


async def read_scope(
    invitations: Invitations, s: AsyncSession, caller: Principal, learner_id: str
) -> tuple[str, ...] | None:
    """None: the caller reads the whole record (the learner, an admin); otherwise the
    sessions the caller may read it within (empty: nothing)."""
    if caller.is_admin or caller.user_id == learner_id:
        return None
    return await sessions_in_scope(invitations, s, caller.user_id, learner_id)


async def class_owner(s: AsyncSession, class_id: str) -> str | None:
    """Who owns a class: its course's instructor, or its creator for a standalone one."""
    repo = HierarchyRepository(s)
    klass = await repo.get_class(class_id)
    if klass is None:
        return None
    if klass.course_id:
        course = await repo.get_course(klass.course_id)
        return course.instructor_id if course is not None else None
    return klass.created_by


async def takes_part(
    invitations: Invitations, s: AsyncSession, caller: Principal, class_id: str
) -> bool:
    """Whether the caller takes part in the class (see the module doc)."""
    if caller.is_admin or await class_owner(s, class_id) == caller.user_id:
        return True
    roles = await SessionRepository(s).class_roles(caller.user_id, class_id)
    if any(position == 0 for _, _, position in roles):
        return True
    accepted = await invitations.accepted_subjects(s, caller.user_id, KIND)
    return any(
        creator == caller.user_id or session_id in accepted for session_id, creator, _ in roles
    )
