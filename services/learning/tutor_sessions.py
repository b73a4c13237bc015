"""A completed marketplace tutor session becomes an interaction in both participants'
passports (issue 5).

The background job `learning.tutor_sessions` consumes `marketplace.tutor_session_completed`
(consumer group `learning.tutor_sessions`, shared by the replicas) and records, through the
learning service's normal store (so each one enqueues `learning.interaction_recorded`,
which the chain translator signs with the learner's custodial key and anchors, and which the
passport service adds to the learner's timeline), two xAPI statements:

* the student's: verb ADL `attended` (http://adlnet.gov/expapi/verbs/attended), with the
  tutor as `context.instructor`;
* the tutor's: verb ADL `attended` as well. ADL defines no "facilitated", "taught" or
  "tutored" verb (its vocabulary: abandoned, answered, asked, attempted, attended,
  commented, completed, exited, experienced, failed, imported, initialized, interacted,
  launched, mastered, passed, preferred, progressed, registered, responded, resumed,
  satisfied, scored, shared, suspended, terminated, voided, waived, logged-in/out), and
  `attended` ("the actor was present at a virtual or physical event or activity") is true
  of the tutor too. The role is stated in the statement instead, as the Keiko extension
  `context.extensions[https://keiko.network/xapi/extensions/session-role]` = `tutor` or
  `student` (and the student's statement names the tutor as instructor).

Both statements: actor = the participant's Keiko account agent; object = the activity
`https://keiko.network/xapi/activities/tutorial-session/<session id>` (Keiko type
`tutorial-session`, named after the session's subject); `context.contextActivities.parent`
= the class when the session has a `class_id` (and `grouping` = its course when the learning
service knows the class); timestamp = the session's `end_time`; result = completion, and
duration = end - start; authority = the learning service's agent (`keiko-learning`).

Exactly once in effect: the event is handled under `handle_once` (dedupe marker in the
same transaction as the statements), and the statement ids are deterministic, UUID v5 of
`keiko:tutor-session:<session id>:<role>` in `TUTOR_SESSION_NAMESPACE`, so even a
redelivery past the marker stores nothing new (an identical statement is a no-op).

A malformed event (missing or invalid fields, a status other than `completed`) is a
permanent error: it is logged and acknowledged (marked handled), never retried.
Transient failures (database, bus) raise, so the delivery is retried and, after the bus's
`max_deliveries`, dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.clock import Clock, SystemClock
from services.kit.errors import ValidationError
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import Deduplicator, handle_once, run_consumer
from services.learning.common.storage import processed_events
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.service import LearningService
from services.learning.sessions.domain import TutorKind
from services.learning.xapi import format_duration, format_timestamp, parse_timestamp, vocab

__all__ = [
    "CONSUMER_GROUP",
    "JOB_NAME",
    "TOPIC_TUTOR_SESSION_COMPLETED",
    "TUTOR_SESSION_NAMESPACE",
    "CompletedTutorSession",
    "TutorSessionConsumer",
    "parse_completed_session",
    "session_statements",
    "tutor_session_consumer",
    "tutor_session_statement_id",
]

log = structlog.get_logger(__name__)

TOPIC_TUTOR_SESSION_COMPLETED = "marketplace.tutor_session_completed"
CONSUMER_GROUP = "learning.tutor_sessions"
JOB_NAME = "learning.tutor_sessions"
TUTOR_SESSION_NAMESPACE = uuid.UUID("0b3f0a57-8e2c-5d6a-9f14-4b6569b07475")
LANGUAGE = "en"
ROLE_STUDENT = "student"
ROLE_TUTOR = "tutor"


@dataclass(frozen=True, slots=True)
class CompletedTutorSession:
    session_id: str
    tutor_id: str
    student_id: str
    start_time: datetime
    end_time: datetime
    subject: str
    class_id: str | None


def tutor_session_statement_id(session_id: str, role: str) -> str:
    return str(uuid.uuid5(TUTOR_SESSION_NAMESPACE, f"keiko:tutor-session:{session_id}:{role}"))


def _time(payload: Mapping[str, Any], name: str) -> datetime:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValidationError(name, "must be an ISO 8601 UTC date-time")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ValidationError(name, str(exc)) from exc


def parse_completed_session(event: Event) -> CompletedTutorSession:
    """The session a `marketplace.tutor_session_completed` event announces; ValidationError
    (naming the payload field) when it is malformed."""
    p = event.payload
    if p.get("status") != "completed":
        raise ValidationError("status", "must be completed")
    session_id = h.check_id(p.get("session_id"), "session_id")
    tutor_id = h.check_id(p.get("tutor_id"), "tutor_id")
    student_id = h.check_id(p.get("student_id"), "student_id")
    if tutor_id == student_id:
        raise ValidationError("student_id", "must differ from tutor_id")
    start, end = _time(p, "start_time"), _time(p, "end_time")
    if end < start:
        raise ValidationError("end_time", "must not be before start_time")
    subject = p.get("subject") or ""
    if not isinstance(subject, str) or len(subject) > h.MAX_TITLE:
        raise ValidationError("subject", f"must be a string of at most {h.MAX_TITLE} characters")
    class_id = p.get("class_id") or None
    if class_id is not None:
        class_id = h.check_id(class_id, "class_id")
    return CompletedTutorSession(
        session_id, tutor_id, student_id, start, end, subject.strip(), class_id
    )


def session_statements(
    session: CompletedTutorSession, *, course_id: str | None = None
) -> list[dict[str, Any]]:
    """The student's and the tutor's statements (in that order), before validation."""
    definition: dict[str, Any] = {"type": vocab.TYPE_KEIKO_TUTORIAL_SESSION}
    if session.subject:
        definition["name"] = {LANGUAGE: session.subject}
    activity = {
        "objectType": "Activity",
        "id": h.tutorial_session_iri(session.session_id),
        "definition": definition,
    }
    context_activities: dict[str, Any] = {
        "category": [
            {
                "objectType": "Activity",
                "id": vocab.KEIKO_PROFILE,
                "definition": {"type": h.TYPE_PROFILE},
            }
        ]
    }
    if session.class_id is not None:
        context_activities["parent"] = [
            {
                "objectType": "Activity",
                "id": h.class_iri(session.class_id),
                "definition": {"type": vocab.TYPE_LESSON},
            }
        ]
        if course_id is not None:
            context_activities["grouping"] = [
                {
                    "objectType": "Activity",
                    "id": h.course_iri(course_id),
                    "definition": {"type": vocab.TYPE_COURSE},
                }
            ]
    out = []
    for role, user in ((ROLE_STUDENT, session.student_id), (ROLE_TUTOR, session.tutor_id)):
        context: dict[str, Any] = {
            "language": LANGUAGE,
            "contextActivities": context_activities,
            "extensions": {
                vocab.EXT_TUTOR_KIND: TutorKind.HUMAN.value,
                vocab.EXT_SESSION_ROLE: role,
            },
        }
        if role == ROLE_STUDENT:
            context["instructor"] = h.keiko_agent(session.tutor_id)
        out.append(
            {
                "id": tutor_session_statement_id(session.session_id, role),
                "actor": h.keiko_agent(user),
                "verb": {"id": vocab.VERB_ATTENDED, "display": {"en-US": "attended"}},
                "object": activity,
                "context": context,
                "result": {
                    "completion": True,
                    "duration": format_duration(session.end_time - session.start_time),
                },
                "timestamp": format_timestamp(session.end_time),
            }
        )
    return out


class TutorSessionConsumer:
    """Turns each completed tutor session into the two participants' statements, once."""

    def __init__(self, service: LearningService, clock: Clock | None = None) -> None:
        self.service = service
        self.dedupe = Deduplicator(
            processed_events, group=CONSUMER_GROUP, clock=clock or SystemClock()
        )

    async def handle(self, event: Event) -> bool:
        """Handle one delivery; True when statements were recorded. Malformed events are
        logged and marked handled; anything else that fails raises (retry, dead letter)."""
        if event.topic != TOPIC_TUTOR_SESSION_COMPLETED:
            return False
        try:
            session = parse_completed_session(event)
        except ValidationError as exc:
            log.warning(
                "malformed tutor session event skipped",
                topic=event.topic,
                event_id=event.id,
                key=event.key,
                error=str(exc),
            )
            await handle_once(self.service.db, self.dedupe, event, _nothing)
            return False

        async def record(s: AsyncSession, _: Event) -> None:
            course_id: str | None = None
            if session.class_id is not None:
                row = await HierarchyRepository(s).get_class(session.class_id)
                course_id = row.course_id if row is not None else None
            for i, statement in enumerate(session_statements(session, course_id=course_id)):
                await self.service.statements.record_service_statement(
                    s,
                    statement,
                    path=f"tutor_session[{i}]",
                    course_id=course_id,
                    class_id=session.class_id,
                    tutorial_session_id=session.session_id,
                )

        ran = await handle_once(self.service.db, self.dedupe, event, record)
        if ran:
            self.service.statements.notify_committed()
            log.info(
                "tutor session recorded in both passports",
                session_id=session.session_id,
                event_id=event.id,
            )
        return ran


async def _nothing(_s: AsyncSession, _e: Event) -> None:
    return None


def tutor_session_consumer(
    service: LearningService, bus: EventBus, clock: Clock | None = None
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job `learning.tutor_sessions`: consume
    `marketplace.tutor_session_completed` (group `learning.tutor_sessions`) until `stop`."""
    consumer = TutorSessionConsumer(service, clock)

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            [TOPIC_TUTOR_SESSION_COMPLETED],
            group=CONSUMER_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
        )
        task = asyncio.create_task(run_consumer(subscription, consumer.handle))
        try:
            await stop.wait()
        finally:
            await subscription.close()
            await asyncio.gather(task, return_exceptions=True)

    return run
