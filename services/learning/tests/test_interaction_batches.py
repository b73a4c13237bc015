"""RecordInteractions: many interactions in one call, all or nothing, each authorized and
stored exactly as a single RecordInteraction would (it is a batch of one), with a bounded
number of SQL statements whatever the batch's size. Both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import AlreadyExists, NotFound, PermissionDenied, ValidationError
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.learning.interactions.inputs import (
    MAX_INTERACTION_BATCH,
    InteractionInput,
    InteractionSubmission,
    ScoreInput,
)
from services.learning.service import LearningService
from services.learning.storage import outbox
from services.learning.tests.sql import in_transaction, statements_run
from services.learning.tests.test_service import ANA, BEN, TOM, course_and_class, events

TOPIC = "learning.interaction_recorded"


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


def exercise(n: int, **fields: object) -> InteractionSubmission:
    inp = InteractionInput(kind="exercise", title=f"Ex {n}", completion=True)
    return InteractionSubmission(replace(inp, **fields))  # type: ignore[arg-type]


async def stored_ids(service: LearningService) -> list[str]:
    page = await service.interactions.list_interactions(ANA, requested=500)
    return [r.id for r in page.items]


async def test_a_batch_is_recorded_in_order_with_one_event_each(
    service: LearningService, migrated_database: Database
) -> None:
    study = await service.sessions.start_study_session(ANA, topic="Matrices")
    single = await service.interactions.record_interaction(
        ANA, exercise(0, study_session_id=study.id).interaction
    )
    items = [exercise(i, study_session_id=study.id) for i in range(1, 6)]
    rows = await service.interactions.record_interactions(ANA, items)
    assert [r.interaction.title for r in rows if r.interaction] == [f"Ex {i}" for i in range(1, 6)]
    assert all(r.study_session_id == study.id and r.learner_id == "ana" for r in rows)
    assert sorted(await stored_ids(service)) == sorted([single.id, *(r.id for r in rows)])
    # Each reaches the outbox (and so the passport and anchoring) as a single one does.
    recorded = [e for e in await events(migrated_database) if e["topic"] == TOPIC]
    assert [e["payload"]["statement_id"] for e in recorded] == [single.id, *(r.id for r in rows)]
    assert {k for k in recorded[1]["payload"]} == {k for k in recorded[0]["payload"]}
    assert all(e["key"] == "ana" for e in recorded)


async def test_the_limit_and_an_empty_batch(service: LearningService) -> None:
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interactions(ANA, [])
    assert caught.value.field == "interactions"
    too_many = [exercise(i) for i in range(MAX_INTERACTION_BATCH + 1)]
    with pytest.raises(ValidationError, match="at most 500") as caught:
        await service.interactions.record_interactions(ANA, too_many)
    assert caught.value.field == "interactions"


async def test_a_bad_item_stores_nothing_and_is_named(
    service: LearningService, migrated_database: Database
) -> None:
    before = len(await events(migrated_database))
    bad = InteractionSubmission(InteractionInput(kind="exercise", title=" ", completion=True))
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interactions(ANA, [exercise(0), exercise(1), bad])
    assert caught.value.field == "interactions[2].interaction.exercise.title"
    with pytest.raises(NotFound, match=r"^interactions\[1\]\.interaction\.context: study"):
        await service.interactions.record_interactions(
            ANA, [exercise(0), exercise(1, study_session_id="nope")]
        )
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interactions(
            ANA, [exercise(0), replace(exercise(1), statement_id="not-a-uuid")]
        )
    assert caught.value.field == "interactions[1].statement_id"
    assert await stored_ids(service) == []
    assert len(await events(migrated_database)) == before


async def test_authorization_is_per_item(
    service: LearningService, migrated_database: Database
) -> None:
    # A learner naming another learner in one item: denied, nothing stored.
    with pytest.raises(PermissionDenied, match=r"^interactions\[1\]\.interaction\.learner_id:"):
        await service.interactions.record_interactions(
            ANA, [exercise(0), exercise(1, learner_id="ben"), exercise(2)]
        )
    assert await stored_ids(service) == []
    # The tutor records for an agreed student of a started session, not for anyone else.
    _, klass = await course_and_class(service)
    session = await service.sessions.create_tutorial_session(
        TOM, tutor_kind="human", student_ids=["ana"], class_id=klass.id, topic="Vectors"
    )
    await service.sessions.start_tutorial_session(TOM, session.id)
    feedback = InteractionInput(
        kind="feedback", learner_id="ana", tutorial_session_id=session.id, content="Good"
    )
    with pytest.raises(PermissionDenied, match=r"^interactions\[0\].*has not accepted"):
        await service.interactions.record_interactions(TOM, [InteractionSubmission(feedback)])
    await service.sessions.respond_to_invitation(ANA, session.invitations[0].id, True)
    rows = await service.interactions.record_interactions(
        TOM, [InteractionSubmission(feedback), InteractionSubmission(feedback)]
    )
    assert [(r.learner_id, r.recorded_by) for r in rows] == [("ana", "tom")] * 2
    with pytest.raises(PermissionDenied, match=r"^interactions\[1\]\.interaction\.learner_id:"):
        await service.interactions.record_interactions(
            TOM,
            [
                InteractionSubmission(feedback),
                InteractionSubmission(replace(feedback, learner_id="ben")),
            ],
        )
    # A class only when taking part: Ben does not.
    with pytest.raises(PermissionDenied, match=r"^interactions\[0\]\.interaction\.context:"):
        await service.interactions.record_interactions(BEN, [exercise(0, class_id=klass.id)])
    assert len(await stored_ids(service)) == 2


async def test_an_item_relates_to_an_earlier_one(service: LearningService) -> None:
    question_id = "0b6f8c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f"
    question = InteractionSubmission(
        InteractionInput(kind="question", content="What is a vector?"), statement_id=question_id
    )
    answer = InteractionSubmission(
        InteractionInput(
            kind="answer",
            related_interaction_id=question_id,
            response="An arrow",
            score=ScoreInput(scaled=0.8),
        )
    )
    asked, answered = await service.interactions.record_interactions(ANA, [question, answer])
    assert asked.id == question_id and answered.object_id == asked.object_id
    # Not to a later one: it is not recorded yet when the earlier item is built.
    later = "1c7a9d2f-6e3b-4d4c-8f80-2b3c4d5e6f70"
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interactions(
            ANA,
            [
                replace(
                    answer, interaction=replace(answer.interaction, related_interaction_id=later)
                ),
                replace(question, statement_id=later),
            ],
        )
    assert caught.value.field == "interactions[0].interaction.related_interaction_id"


async def test_retries_return_the_same_records(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    items = [exercise(i) for i in range(3)]
    first = await service.interactions.record_interactions(ANA, items, request_id="b1")
    clock.advance(timedelta(minutes=1))
    again = await service.interactions.record_interactions(ANA, items, request_id="b1")
    assert [r.id for r in again] == [r.id for r in first]
    assert [r.statement_json for r in again] == [r.statement_json for r in first]
    # Items with statement ids: the same id and content is not stored again, other content
    # under a stored id conflicts and the whole call is undone.
    sid = "2d8b0e3a-7f4c-4e5d-9a91-3c4d5e6f7081"
    [kept] = await service.interactions.record_interactions(
        ANA, [replace(items[0], statement_id=sid)]
    )
    rows = await service.interactions.record_interactions(
        ANA, [exercise(7), replace(items[0], statement_id=sid)]
    )
    assert rows[1].id == kept.id and rows[1].statement_json == kept.statement_json
    with pytest.raises(AlreadyExists, match=r"interactions\[1\]\.interaction\.id"):
        await service.interactions.record_interactions(
            ANA, [exercise(8), replace(items[1], statement_id=sid)]
        )
    with pytest.raises(ValidationError) as caught:
        await service.interactions.record_interactions(
            ANA, [replace(items[0], statement_id=sid), replace(items[1], statement_id=sid)]
        )
    assert caught.value.field == "interactions[1].statement_id"
    assert len(await stored_ids(service)) == 5
    recorded = [e for e in await events(migrated_database) if e["topic"] == TOPIC]
    assert len(recorded) == 5


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    service: LearningService, migrated_database: Database
) -> None:
    course, klass = await course_and_class(service)
    session = await service.sessions.create_tutorial_session(
        TOM, tutor_kind="human", student_ids=["ana"], class_id=klass.id, topic="Vectors"
    )
    await service.sessions.start_tutorial_session(TOM, session.id)
    await service.sessions.respond_to_invitation(ANA, session.invitations[0].id, True)
    study = await service.sessions.start_study_session(TOM, topic="Prep", class_id=klass.id)

    def batch(n: int) -> list[InteractionSubmission]:
        # Every kind of placement and authorization, repeated across the batch.
        made = []
        for i in range(n):
            if i % 2:
                inp = InteractionInput(
                    kind="feedback", learner_id="ana", tutorial_session_id=session.id, content="ok"
                )
            else:
                inp = InteractionInput(
                    kind="exercise", title=f"Ex {i}", study_session_id=study.id, course_id=course.id
                )
            made.append(InteractionSubmission(inp))
        return made

    await service.interactions.record_interactions(TOM, batch(2))
    with statements_run(migrated_database) as two:
        await service.interactions.record_interactions(TOM, batch(2))
    with statements_run(migrated_database) as fifty:
        await service.interactions.record_interactions(TOM, batch(50))
    assert len(fifty) == len(two)
    # A single interaction outside the hierarchy looks nothing up but the definition of its
    # (new) activity, which the statement writer merges.
    with statements_run(migrated_database) as single:
        await service.interactions.record_interaction(TOM, exercise(0).interaction)
    with statements_run(migrated_database) as one:
        await service.interactions.record_interactions(TOM, [exercise(0)])
    assert len(single) == len(one)
    selects = [sql for sql in single if sql.lstrip().upper().startswith("SELECT")]
    assert selects and all("FROM learning.activity_definitions" in sql for sql in selects)


async def test_one_interaction_on_postgresql_sends_no_begin(
    service: LearningService, migrated_database: Database
) -> None:
    """A single RecordInteraction about an activity already stored, without a request id,
    reads and writes outside a transaction (its write is one statement); one that makes a
    new activity, or keys a request id, is recorded in a transaction; nothing is written
    when it is refused."""
    if migrated_database.dialect != "postgresql":
        pytest.skip("SQLite records every interaction in a transaction")
    known = "https://example.org/questions/q1"

    def answer(**fields: object) -> InteractionInput:
        inp = InteractionInput(kind="answer", activity_id=known, title="Q1", response="42")
        return replace(inp, **fields)  # type: ignore[arg-type]

    await service.interactions.record_interaction(ANA, answer())  # the definition exists now
    sid = "3e9c1f4b-8a5d-4f6e-a0b2-4d5e6f708192"
    with in_transaction(migrated_database) as seen:
        row = await service.interactions.record_interaction(ANA, answer(), statement_id=sid)
    assert seen and not any(seen)  # the reads (prepared, stored, definitions), the write
    assert row.id == sid and row.learner_id == "ana"
    with in_transaction(migrated_database) as seen:
        again = await service.interactions.record_interaction(ANA, answer(), statement_id=sid)
    assert again.statement_json == row.statement_json and not any(seen)
    with in_transaction(migrated_database) as seen:
        await service.interactions.record_interaction(ANA, answer(), request_id="k1")
        assert True in seen  # (a transaction's first statement sends the BEGIN: False)
        seen.clear()
        await service.interactions.record_interaction(ANA, exercise(1).interaction)
        assert True in seen
    # A changed definition (another title) falls back to a transaction, stored all the same.
    with in_transaction(migrated_database) as seen:
        renamed = await service.interactions.record_interaction(ANA, answer(title="Q one"))
    assert True in seen and renamed.object_id == known
    with pytest.raises(PermissionDenied):
        await service.interactions.record_interaction(ANA, answer(learner_id="ben"))
    assert len([e for e in await events(migrated_database) if e["topic"] == TOPIC]) == 5


async def test_a_batch_is_published_like_single_ones(
    service: LearningService, migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    relay = OutboxRelay(migrated_database, outbox, event_bus, clock=clock)
    service.on_commit.append(relay.notify)
    stop = asyncio.Event()
    job = asyncio.create_task(relay.run(stop))
    try:
        async with event_bus.subscribe([TOPIC], group="test-passport", consumer="t") as recorded:
            rows = await service.interactions.record_interactions(
                ANA, [exercise(i) for i in range(3)]
            )
            seen = []
            for _ in rows:
                delivery = await asyncio.wait_for(recorded.__anext__(), 10)
                seen.append(delivery.event.payload["statement_id"])
                await delivery.ack()
        assert sorted(seen) == sorted(r.id for r in rows)
    finally:
        stop.set()
        await job
