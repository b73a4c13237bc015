"""Issue 5: a completed marketplace tutor session becomes an xAPI statement in the student's
and the tutor's record (and so an interaction in both passports). Runs on SQLite + the
in-process bus by default, on PostgreSQL + Redis with KEIKO_TEST_BACKEND=real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.outbox import OutboxRelay
from services.learning.hierarchy.domain import KEIKO_HOME_PAGE
from services.learning.service import LearningService
from services.learning.statements.domain import SERVICE_USER_ID
from services.learning.storage import outbox, processed_events, statements
from services.learning.tutor_sessions import (
    CONSUMER_GROUP,
    TOPIC_TUTOR_SESSION_COMPLETED,
    TutorSessionConsumer,
    tutor_session_consumer,
    tutor_session_statement_id,
)
from services.learning.xapi import vocab

ATTENDED = "http://adlnet.gov/expapi/verbs/attended"
SESSION_IRI = "https://keiko.network/xapi/activities/tutorial-session/"
START = "2026-01-01T09:00:00+00:00"
END = "2026-01-01T10:30:00+00:00"


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


def completed(session_id: str = "sess-1", **changes: Any) -> Event:
    payload: dict[str, Any] = {
        "session_id": session_id,
        "tutor_id": "tom",
        "student_id": "ana",
        "space_id": "space-1",
        "reservation_id": "res-1",
        "start_time": START,
        "end_time": END,
        "subject": "Algebra",
        "class_id": "",
        "status": "completed",
        "actor_id": "ana",
        "occurred_at": END,
    }
    payload.update(changes)
    return Event(TOPIC_TUTOR_SESSION_COMPLETED, key=session_id, payload=payload)


def agent(user: str) -> dict[str, Any]:
    return {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": user}}


async def stored(db: Database) -> dict[str, dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(select(statements))).all()
    return {r.id: {**dict(r._mapping), "json": json.loads(r.statement_json)} for r in rows}


async def recorded_events(db: Database) -> list[dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.seq))).all()
    return [dict(r._mapping) for r in rows]


async def markers(db: Database) -> int:
    async with db.session() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer_group == CONSUMER_GROUP)
        )
    return int(count or 0)


async def test_a_completed_session_records_the_student_and_the_tutor(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    consumer = TutorSessionConsumer(service, clock)
    woke: list[int] = []
    service.on_commit.append(lambda: woke.append(1))
    assert await consumer.handle(completed()) is True

    rows = await stored(migrated_database)
    student_id = tutor_session_statement_id("sess-1", "student")
    tutor_id = tutor_session_statement_id("sess-1", "tutor")
    assert set(rows) == {student_id, tutor_id}
    assert woke == [1]
    for sid, learner, role in ((student_id, "ana", "student"), (tutor_id, "tom", "tutor")):
        row, st = rows[sid], rows[sid]["json"]
        assert row["learner_id"] == learner
        assert row["recorded_by"] == SERVICE_USER_ID
        assert row["tutorial_session_id"] == "sess-1"
        assert row["verb_id"] == ATTENDED
        assert row["object_id"] == SESSION_IRI + "sess-1"
        assert st["actor"] == agent(learner)
        assert st["verb"]["id"] == ATTENDED
        assert st["object"]["id"] == SESSION_IRI + "sess-1"
        assert st["object"]["definition"]["type"] == vocab.TYPE_KEIKO_TUTORIAL_SESSION
        assert st["object"]["definition"]["name"] == {"en": "Algebra"}
        assert st["timestamp"] == "2026-01-01T10:30:00.000Z"
        assert st["result"] == {"completion": True, "duration": "PT1H30M"}
        assert st["authority"] == agent(SERVICE_USER_ID)
        assert st["context"]["extensions"][vocab.EXT_SESSION_ROLE] == role
        assert "parent" not in st["context"]["contextActivities"]  # no class
    assert rows[student_id]["json"]["context"]["instructor"] == agent("tom")
    assert "instructor" not in rows[tutor_id]["json"]["context"]

    events = await recorded_events(migrated_database)
    assert [e["topic"] for e in events] == ["learning.interaction_recorded"] * 2
    payloads = [e["payload"] for e in events]
    assert {
        (e["key"], e["payload"]["learner_id"], e["payload"]["statement_id"]) for e in events
    } == {
        ("ana", "ana", student_id),
        ("tom", "tom", tutor_id),
    }
    assert all(p["tutorial_session_id"] == "sess-1" for p in payloads)


async def test_the_class_is_the_parent_context(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    tom = Principal("tom", frozenset({"tutor"}))
    course = await service.hierarchy.create_course(tom, "Maths", "")
    klass = await service.hierarchy.create_class(tom, "Algebra I", "", course_id=course.id)
    consumer = TutorSessionConsumer(service, clock)
    assert await consumer.handle(completed(class_id=klass.id)) is True
    for row in (await stored(migrated_database)).values():
        activities = row["json"]["context"]["contextActivities"]
        assert [a["id"] for a in activities["parent"]] == [
            f"https://keiko.network/xapi/activities/class/{klass.id}"
        ]
        assert [a["id"] for a in activities["grouping"]] == [
            f"https://keiko.network/xapi/activities/course/{course.id}"
        ]
        assert (row["class_id"], row["course_id"]) == (klass.id, course.id)


async def test_redelivery_creates_nothing_new(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    consumer = TutorSessionConsumer(service, clock)
    event = completed()
    assert await consumer.handle(event) is True
    before = (await stored(migrated_database), await recorded_events(migrated_database))
    clock.advance(timedelta(minutes=5))
    # The same delivery again: the dedupe marker skips it.
    assert await consumer.handle(event) is False
    # The same session announced again under another event id (a re-publish): the
    # deterministic statement ids make the store a no-op, so no new event either.
    assert await consumer.handle(completed()) is True
    after = (await stored(migrated_database), await recorded_events(migrated_database))
    assert set(after[0]) == set(before[0])
    assert [r["statement_json"] for r in after[0].values()] == [
        r["statement_json"] for r in before[0].values()
    ]
    assert len(after[1]) == len(before[1]) == 2
    assert await markers(migrated_database) == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"student_id": ""},
        {"tutor_id": None},
        {"session_id": "has spaces"},
        {"end_time": "yesterday"},
        {"end_time": "2026-01-01T10:30:00"},  # no offset
        {"start_time": END, "end_time": START},  # ends before it starts
        {"status": "cancelled"},
        {"student_id": "tom"},
        {"class_id": "not/an/id"},
        {"subject": 42},
    ],
)
async def test_a_malformed_event_is_logged_and_skipped(
    service: LearningService, migrated_database: Database, clock: FixedClock, changes: Any
) -> None:
    consumer = TutorSessionConsumer(service, clock)
    event = completed(**changes)
    with structlog.testing.capture_logs() as logs:
        assert await consumer.handle(event) is False
    assert [entry["event"] for entry in logs] == ["malformed tutor session event skipped"]
    assert logs[0]["event_id"] == event.id and logs[0]["log_level"] == "warning"
    assert await stored(migrated_database) == {}
    assert await recorded_events(migrated_database) == []
    assert await markers(migrated_database) == 1  # handled: never retried


async def test_the_job_consumes_the_bus_and_survives_a_malformed_event(
    service: LearningService,
    migrated_database: Database,
    event_bus: EventBus,
    clock: FixedClock,
) -> None:
    relay = OutboxRelay(migrated_database, outbox, event_bus, clock=clock)
    service.on_commit.append(relay.notify)
    stop = asyncio.Event()
    jobs = [
        asyncio.create_task(tutor_session_consumer(service, event_bus, clock)(stop)),
        asyncio.create_task(relay.run(stop)),
    ]
    try:
        async with event_bus.subscribe(
            ["learning.interaction_recorded"], group="test-passport", consumer="t"
        ) as recorded:
            bad, good = completed("sess-bad", end_time="soon"), completed("sess-2")
            await event_bus.publish(bad)
            await event_bus.publish(good)
            await event_bus.publish(good)  # the bus redelivers: at-least-once
            seen = []
            for _ in range(2):
                delivery = await asyncio.wait_for(recorded.__anext__(), 10)
                seen.append((delivery.event.key, delivery.event.payload["verb_id"]))
                await delivery.ack()
            assert sorted(seen) == [("ana", ATTENDED), ("tom", ATTENDED)]
        for _ in range(400):  # until both deliveries of `good` and `bad` are settled
            if await markers(migrated_database) == 2:
                break
            await asyncio.sleep(0.025)
        assert await markers(migrated_database) == 2
        assert set(await stored(migrated_database)) == {
            tutor_session_statement_id("sess-2", "student"),
            tutor_session_statement_id("sess-2", "tutor"),
        }
        assert all(not task.done() for task in jobs)
    finally:
        stop.set()
        await asyncio.gather(*jobs)
    assert len(await recorded_events(migrated_database)) == 2
