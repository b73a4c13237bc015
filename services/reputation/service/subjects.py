"""Subjects: the exchanges that may be rated, opened from other services' events (a
completed tutor session), and the humanity state of raters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.errors import ValidationError
from services.kit.events import Event
from services.reputation.domain import (
    RATING_WINDOW,
    Role,
    Subject,
    SubjectKind,
    parse_iso,
    validate_id,
)
from services.reputation.service.core import (
    STUDENT_CONSENTS,
    TOPIC_HUMANITY_VERIFIED,
    TOPIC_SESSION_COMPLETED,
    TOPIC_USER_UPDATED,
    ReputationCore,
    log,
)
from services.reputation.storage import Repository


class Subjects(ReputationCore):
    async def open_subject(
        self,
        session: AsyncSession,
        *,
        kind: SubjectKind,
        subject_id: str,
        participants: Mapping[str, Role],
        completed_at: datetime,
        context: dict[str, Any] | None = None,
        source_event_id: str | None = None,
    ) -> bool:
        """Open the rating window of a completed exchange (in the caller's transaction).
        Generic over subject kinds: a learning interaction is opened the same way.
        Returns False if the subject was already known (redelivery)."""
        subject_id = validate_id(subject_id, "subject_id")
        if len(participants) != 2 or set(participants.values()) != {Role.STUDENT, Role.TUTOR}:
            raise ValidationError("participants", "need exactly one student and one tutor")
        for user_id in participants:
            validate_id(user_id, "participants")
        subject = Subject(
            kind=kind,
            id=subject_id,
            completed_at=completed_at,
            closes_at=completed_at + RATING_WINDOW,
            participants=dict(participants),
        )
        return await Repository(session).add_subject(
            subject, context or {}, source_event_id, self.clock.now()
        )

    async def on_session_completed(self, session: AsyncSession, event: Event) -> None:
        """`marketplace.tutor_session_completed` -> a rating window for tutor and student."""
        p = event.payload
        try:
            tutor, student = str(p["tutor_id"]), str(p["student_id"])
            session_id = str(p["session_id"])
            # Issue 9: a rating needs a session both sides agreed to. The marketplace
            # completes a session only with the student's consent and says how it was
            # given ("self": they booked it, "accepted": they accepted the invitation);
            # an event without it opens no rating window.
            consent = p.get("student_consent")
            if consent not in STUDENT_CONSENTS:
                raise ValidationError("student_consent", f"is {consent!r}, not a consent")
            completed_raw = p.get("occurred_at")
            completed_at = parse_iso(str(completed_raw)) if completed_raw else event.occurred_at
            if tutor == student:
                raise ValidationError("student_id", "equals tutor_id")
            await self.open_subject(
                session,
                kind=SubjectKind.SESSION,
                subject_id=session_id,
                participants={tutor: Role.TUTOR, student: Role.STUDENT},
                completed_at=completed_at,
                context={
                    k: p.get(k)
                    for k in ("space_id", "start_time", "end_time", "subject", "class_id")
                    if p.get(k) is not None
                },
                source_event_id=event.id,
            )
        except (KeyError, ValueError, ValidationError) as exc:
            # A malformed event never becomes valid by retrying: record and skip it.
            log.error("reputation.bad_session_event", event_id=event.id, error=repr(exc))

    async def on_humanity_event(self, session: AsyncSession, event: Event) -> None:
        """`identity.humanity_verified` / `identity.user_updated`: {user_id,
        humanity_commitment}; an empty commitment (or human_verified false) forgets it."""
        p = event.payload
        user_id = str(p.get("user_id") or p.get("id") or "")
        if not user_id:
            log.error("reputation.bad_humanity_event", event_id=event.id)
            return
        commitment = str(p.get("humanity_commitment") or "")
        if event.topic == TOPIC_USER_UPDATED and "humanity_commitment" not in p:
            if p.get("human_verified") is False:
                commitment = ""
            else:
                return  # a profile change that says nothing about humanity
        await Repository(session).set_commitment(user_id, commitment or None, self.clock.now())

    async def handle_event(self, session: AsyncSession, event: Event) -> None:
        if event.topic == TOPIC_SESSION_COMPLETED:
            await self.on_session_completed(session, event)
        elif event.topic in (TOPIC_HUMANITY_VERIFIED, TOPIC_USER_UPDATED):
            await self.on_humanity_event(session, event)
