"""A client's retry racing its first attempt (same request id, both running at once): the
retry answers what a later retry would, nothing is stored twice, and no INTERNAL
(`services.kit.idempotency`). The race is made deterministic by `services.kit.races`:
the first call holds its transaction open until the retry waits on it. Both engines; on
PostgreSQL the retry is seen waiting for the first call's commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import AlreadyExists
from services.kit.races import twin_calls
from services.learning.interactions.inputs import InteractionInput, InteractionSubmission
from services.learning.service import LearningService
from services.learning.statements import writes
from services.learning.storage import (
    classes,
    courses,
    lrs_clients,
    outbox,
    request_keys,
    statements,
    study_sessions,
    tutorial_sessions,
    webhook_sources,
)
from services.learning.tests.test_service import ACT, ANA, TOM, statement, texts

SID = "7b0e3a52-4f8c-4b43-9a8e-0c6a37e6a001"
SIDS = [f"7b0e3a52-4f8c-4b43-9a8e-0c6a37e6a0{n:02d}" for n in range(10, 13)]


def exercise(n: int) -> InteractionInput:
    return InteractionInput(kind="exercise", title=f"Ex {n}", completion=True)


def ids(result: Any) -> list[str]:
    rows = result if isinstance(result, list) else [result]
    return [r.source.id if hasattr(r, "source") else r.id for r in rows]


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[LearningService], Awaitable[Any]]
    table: Table  # where each call's object is stored
    stored: int  # rows a call stores there
    keys: int = 1  # request keys stored (none: the statement ids are the key)
    # The answer a later retry gets: the same result, or for a secret shown only once, this.
    retry_raises: type[Exception] | None = None


CASES = [
    Case(
        "record_statements",
        lambda s: s.statements.record_statements(
            ANA, texts(statement(), statement(activity=ACT + "q2")), request_id="r1"
        ),
        statements,
        2,
    ),
    Case(
        "record_statements with client ids",
        lambda s: s.statements.record_statements(ANA, texts(statement(id=SID)), request_id="r1"),
        statements,
        1,
    ),
    Case(
        "record_interaction",
        lambda s: s.interactions.record_interaction(ANA, exercise(1), request_id="r1"),
        statements,
        1,
    ),
    Case(
        "record_interactions",
        lambda s: s.interactions.record_interactions(
            ANA, [InteractionSubmission(exercise(i)) for i in range(3)], request_id="r1"
        ),
        statements,
        3,
    ),
    # No request id: the statement ids are the key (xAPI's own idempotency).
    Case(
        "record_statements by statement ids",
        lambda s: s.statements.record_statements(
            ANA, texts(statement(id=SIDS[0]), statement(id=SIDS[1], activity=ACT + "q2"))
        ),
        statements,
        2,
        keys=0,
    ),
    Case(
        "record_interactions by statement ids",
        lambda s: s.interactions.record_interactions(
            ANA, [InteractionSubmission(exercise(i), statement_id=SIDS[i]) for i in range(3)]
        ),
        statements,
        3,
        keys=0,
    ),
    Case(
        "create_course",
        lambda s: s.hierarchy.create_course(TOM, "Algebra", request_id="r1"),
        courses,
        1,
    ),
    Case(
        "create_class",
        lambda s: s.hierarchy.create_class(TOM, "Algebra 1", request_id="r1"),
        classes,
        1,
    ),
    Case(
        "create_tutorial_session",
        lambda s: s.sessions.create_tutorial_session(
            TOM, tutor_kind="human", student_ids=["ana"], topic="Vectors", request_id="r1"
        ),
        tutorial_sessions,
        1,
    ),
    Case(
        "start_study_session",
        lambda s: s.sessions.start_study_session(ANA, topic="Matrices", request_id="r1"),
        study_sessions,
        1,
    ),
    Case(
        "register_lrs_client",
        lambda s: s.clients.register_lrs_client(TOM, "LMS", request_id="r1"),
        lrs_clients,
        1,
        retry_raises=AlreadyExists,
    ),
    Case(
        "register_webhook_source",
        lambda s: s.webhooks.register_webhook_source(
            TOM, name="Locker", kind="learning_locker", request_id="r1"
        ),
        webhook_sources,
        1,
    ),
]


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


async def count(db: Database, table: Table) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_retry_racing_its_first_call_answers_as_a_later_retry(
    case: Case, service: LearningService, migrated_database: Database
) -> None:
    db = migrated_database
    events_before = await count(db, outbox)
    twins = await twin_calls(db, lambda: case.call(service))
    if db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    if case.retry_raises is not None:
        # Whichever committed first answers; the other answers as a later retry does.
        outcomes = [twins.first, twins.second]
        assert sum(isinstance(o, case.retry_raises) for o in outcomes) == 1, outcomes
        assert not any(
            isinstance(o, BaseException) and not isinstance(o, case.retry_raises) for o in outcomes
        ), outcomes
        with pytest.raises(case.retry_raises):
            await case.call(service)
    else:
        first, second = twins.results()
        assert ids(first) == ids(second)
        assert ids(await case.call(service)) == ids(first)  # and a later retry agrees
    assert await count(db, case.table) == case.stored
    assert await count(db, request_keys) == case.keys
    # Only the call that committed enqueued its events (none from the rolled-back twin).
    events = await count(db, outbox) - events_before
    if case.table is statements:
        assert events == case.stored


async def test_a_single_statement_stored_by_a_twin_after_the_lookup_is_accepted(
    service: LearningService, migrated_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement on PostgreSQL is stored by one autocommit statement, no transaction
    to hold: the twin is made to commit its statement right after this call's lookup
    missed it. The insert then breaks the statement's key; the write runs again and finds
    the twin's statement: identical, it is the answer; different, ALREADY_EXISTS (what a
    later call gets either way)."""
    if migrated_database.dialect != "postgresql":
        pytest.skip("SQLite serializes the writers: the lookup cannot miss a twin")
    lookup = writes.lookup_with_definitions
    twin_sends: list[list[str]] = []
    twin_got: list[Any] = []

    async def lookup_then_twin(*args: Any) -> Any:
        found = await lookup(*args)
        if twin_sends:  # only this call's first lookup (not the twin's, nor the rerun's)
            twin_got.append(await service.statements.record_statements(ANA, twin_sends.pop()))
        return found

    monkeypatch.setattr(writes, "lookup_with_definitions", lookup_then_twin)
    sent = texts(statement(id=SID))
    twin_sends.append(sent)
    rows = await service.statements.record_statements(ANA, sent)
    assert [r.id for r in rows] == [r.id for r in twin_got[0]] == [SID]
    twin_sends.append(texts(statement(id=SIDS[2])))
    with pytest.raises(AlreadyExists):
        await service.statements.record_statements(
            ANA, texts(statement(id=SIDS[2], activity=ACT + "other"))
        )
    assert await count(migrated_database, statements) == 2
