"""Fixtures of the reputation tests: a migrated reputation schema, the service on a fixed
clock, and helpers that open rating windows the way production does (through the
`marketplace.tutor_session_completed` consumer)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import pytest

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event
from services.kit.events.dedupe import Deduplicator, handle_once
from services.reputation.domain import Rating, RatingInput, Role, SubjectKind
from services.reputation.service import (
    TOPIC_HUMANITY_VERIFIED,
    TOPIC_SESSION_COMPLETED,
    ReputationService,
    StoredHumanityLookup,
)
from services.reputation.storage import processed_events

_session_ids = itertools.count(1)


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("reputation",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> ReputationService:
    return ReputationService(migrated_database, clock, StoredHumanityLookup(migrated_database))


def user(user_id: str, *roles: str) -> Principal:
    return Principal(user_id=user_id, roles=frozenset(roles or ("learner",)))


ADMIN = user("admin-1", "admin")


def session_event(
    tutor: str,
    student: str,
    completed_at: datetime,
    session_id: str | None = None,
    *,
    student_consent: str | None = "accepted",
) -> Event:
    sid = session_id or f"sess-{next(_session_ids)}"
    return Event(
        TOPIC_SESSION_COMPLETED,
        key=sid,
        occurred_at=completed_at,
        payload={
            "session_id": sid,
            "tutor_id": tutor,
            "student_id": student,
            "space_id": "space-1",
            "reservation_id": "res-1",
            "start_time": completed_at.isoformat(),
            "end_time": completed_at.isoformat(),
            "subject": "Linear algebra",
            "class_id": "",
            "status": "completed",
            "actor_id": tutor,
            "occurred_at": completed_at.isoformat(),
            **({"student_consent": student_consent} if student_consent else {}),
        },
    )


async def consume(service: ReputationService, event: Event) -> bool:
    dedupe = Deduplicator(processed_events, group="reputation", clock=service.clock)
    return await handle_once(service.db, dedupe, event, service.handle_event)


async def complete_session(
    service: ReputationService, tutor: str, student: str, session_id: str | None = None
) -> str:
    event = session_event(tutor, student, service.clock.now(), session_id)
    assert await consume(service, event)
    return str(event.payload["session_id"])


async def verify_human(service: ReputationService, user_id: str, commitment: str) -> None:
    event = Event(
        TOPIC_HUMANITY_VERIFIED,
        key=user_id,
        payload={"user_id": user_id, "humanity_commitment": commitment},
    )
    assert await consume(service, event)


def rating_input(
    rated: str,
    role: Role,
    session_id: str,
    score: int = 5,
    comment: str = "great",
    request_id: str = "",
) -> RatingInput:
    return RatingInput(
        rated_id=rated,
        rater_role=role,
        subject_kind=SubjectKind.SESSION,
        subject_id=session_id,
        score=score,
        comment=comment,
        request_id=request_id,
    )


async def rate(
    service: ReputationService,
    rater: str,
    rated: str,
    role: Role,
    session_id: str,
    score: int = 5,
    **kw: str,
) -> Rating:
    return await service.submit(user(rater), rating_input(rated, role, session_id, score, **kw))


async def rated_session(
    service: ReputationService,
    student: str,
    tutor: str,
    student_score: int = 5,
    tutor_score: int | None = None,
) -> tuple[Rating, Rating | None]:
    """A completed session, rated by the student (and by the tutor if tutor_score)."""
    sid = await complete_session(service, tutor, student)
    first = await rate(service, student, tutor, Role.STUDENT, sid, student_score)
    second = None
    if tutor_score is not None:
        second = await rate(service, tutor, student, Role.TUTOR, sid, tutor_score)
    return first, second
