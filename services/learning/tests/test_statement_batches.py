"""A batch of statements stored in one pass (`StatementWriter.store_many`): the same
outcome as storing them one by one - retries, conflicts, voiding within the batch in
either order, activity definitions folded in order - on both engines."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import AlreadyExists, PermissionDenied
from services.learning.activities.storage import activity_definitions
from services.learning.service import LearningService
from services.learning.statements.tables import statement_activities, statement_agents
from services.learning.tests.sql import in_transaction, statements_run
from services.learning.tests.test_service import ACT, ADMIN, ANA, events, statement, texts

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> LearningService:
    return LearningService(migrated_database, clock)


def voiding(target: str) -> dict[str, object]:
    return statement(
        id=str(uuid.uuid4()), verb=VOIDED, object={"objectType": "StatementRef", "id": target}
    )


async def test_a_retried_batch_is_a_noop_and_a_conflicting_one_changes_nothing(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    batch = [statement(id=str(uuid.uuid4()), activity=ACT + f"q{i}") for i in range(5)]
    first = await service.statements.record_statements(ANA, texts(*batch))
    clock.advance(timedelta(minutes=1))
    again = await service.statements.record_statements(ANA, texts(*batch))
    assert [r.statement_json for r in again] == [r.statement_json for r in first]
    assert len(await events(migrated_database)) == 5
    fresh = statement(id=str(uuid.uuid4()))
    changed = statement(id=batch[2]["id"], activity=ACT + "other")
    with pytest.raises(AlreadyExists, match=r"statements\[2\]\.id"):
        await service.statements.record_statements(ANA, texts(batch[0], fresh, changed))
    # All or nothing: the new statement before the conflict was not kept.
    assert await service.statements.find(fresh["id"], "id") is None
    assert len(await events(migrated_database)) == 5


async def test_a_voiding_statement_before_its_target_in_one_batch(
    service: LearningService,
) -> None:
    target = statement(id=str(uuid.uuid4()))
    rows = await service.statements.record_statements(
        ANA, texts(voiding(target["id"]), target, statement())
    )
    assert [r.voided for r in rows] == [False, True, False]
    assert (await service.statements.get_statement(ANA, target["id"])).voided
    # Another writer's voiding statement stored earlier does not void it.
    foreign = statement(id=str(uuid.uuid4()))
    await service.statements.record_statements(
        ADMIN,
        texts(
            statement(
                "ben", verb=VOIDED, object={"objectType": "StatementRef", "id": foreign["id"]}
            )
        ),
    )
    [row] = await service.statements.record_statements(ANA, texts(foreign))
    assert not row.voided


async def test_voiding_a_stored_statement_needs_the_right_to(service: LearningService) -> None:
    [bens] = await service.statements.record_statements(ADMIN, texts(statement("ben")))
    with pytest.raises(PermissionDenied, match=r"statements\[1\]\.object\.id"):
        await service.statements.record_statements(ANA, texts(statement(), voiding(bens.id)))
    [mine] = await service.statements.record_statements(ANA, texts(statement()))
    rows = await service.statements.record_statements(ANA, texts(statement(), voiding(mine.id)))
    assert rows[1].voids_statement_id == mine.id
    assert (await service.statements.get_statement(ANA, mine.id)).voided


async def test_definitions_are_rewritten_only_when_a_merge_changes_them(
    service: LearningService, migrated_database: Database, clock: FixedClock
) -> None:
    def with_name(names: dict[str, str]) -> dict[str, object]:
        return statement(object={"id": ACT + "q1", "definition": {"name": names}})

    await service.statements.record_statements(
        ANA, texts(with_name({"en-US": "One"}), with_name({"fr": "Un"}))
    )

    async def stored() -> tuple[str, object]:
        t = activity_definitions
        async with migrated_database.session() as s:
            row = (await s.execute(select(t.c.definition_json, t.c.updated))).one()
        return row.definition_json, row.updated

    definition, updated = await stored()
    assert definition == '{"name":{"en-US":"One","fr":"Un"}}'
    clock.advance(timedelta(minutes=1))
    await service.statements.record_statements(ANA, texts(with_name({"fr": "Un"})))
    assert await stored() == (definition, updated)
    await service.statements.record_statements(ANA, texts(with_name({"es": "Uno"})))
    definition, later = await stored()
    assert definition == '{"name":{"en-US":"One","fr":"Un","es":"Uno"}}' and later != updated


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    service: LearningService, migrated_database: Database
) -> None:
    def batch(n: int) -> list[str]:
        return texts(
            *(
                statement(
                    id=str(uuid.uuid4()),
                    activity=ACT + f"q{i % 3}",
                    object={"id": ACT + f"q{i % 3}", "definition": {"name": {"en": "Q"}}},
                )
                for i in range(n)
            )
        )

    await service.statements.record_statements(ANA, batch(3))  # the definitions exist now
    with statements_run(migrated_database) as two:
        await service.statements.record_statements(ANA, batch(2))
    with statements_run(migrated_database) as fifty:
        await service.statements.record_statements(ANA, batch(50))
    assert len(fifty) == len(two)
    # Statements without an id get a fresh one: nothing is looked up for them.
    fresh = [statement(activity=ACT + "q1") for _ in range(2)]
    with statements_run(migrated_database) as unlooked:
        await service.statements.record_statements(ANA, texts(*fresh))
    # No lookup, no definitions to merge (PostgreSQL reads both in one SELECT).
    postgresql = migrated_database.dialect == "postgresql"
    assert len(unlooked) == len(two) - (1 if postgresql else 2)
    # One statement: on PostgreSQL its four writes (row, agent and activity index rows,
    # outbox event) are one statement (services.learning.statements.combined).
    with statements_run(migrated_database) as one:
        await service.statements.record_statements(ANA, batch(1))
    assert len(one) == (2 if postgresql else len(two))


async def test_one_statement_is_stored_as_a_batch_of_it_is(
    service: LearningService, migrated_database: Database
) -> None:
    """One statement a call (on PostgreSQL one writing statement outside a transaction,
    `services.learning.statements.combined`) stores the same rows, index rows, voids and
    events as the same statements in one batch."""

    def rich(target: str | None = None) -> list[dict[str, object]]:
        other = "https://keiko.example/other"
        first = statement(
            id=str(uuid.uuid4()),
            object={"id": ACT + "q1", "definition": {"name": {"en": "Q"}}},
            context={
                "instructor": {"mbox": "mailto:teacher@example.com"},
                "contextActivities": {"parent": [{"id": other}, {"id": ACT + "q1"}]},
            },
        )
        second = voiding(target) if target else statement(id=str(uuid.uuid4()))
        return [first, second]

    async def index(ids: Sequence[str]) -> list[tuple[object, ...]]:
        async with migrated_database.session() as s:
            out: list[tuple[object, ...]] = []
            for t in (statement_agents, statement_activities):
                rows = (await s.execute(select(t).where(t.c.statement_id.in_(ids)))).all()
                out.extend((*tuple(r)[1:], ids.index(r.statement_id)) for r in rows)
        return sorted(out, key=repr)

    [old_one] = await service.statements.record_statements(ANA, texts(statement()))
    [old_two] = await service.statements.record_statements(ANA, texts(statement()))
    singly = rich(old_one.id)
    rows = [(await service.statements.record_statements(ANA, texts(s)))[0] for s in singly]
    batched = rich(old_two.id)
    together = await service.statements.record_statements(ANA, texts(*batched))
    assert [r.voided for r in rows] == [r.voided for r in together] == [False, False]
    assert (await service.statements.get_statement(ANA, old_one.id)).voided
    assert (await service.statements.get_statement(ANA, old_two.id)).voided
    assert await index([r.id for r in rows]) == await index([r.id for r in together])
    # One event each, in order.
    stored = [e["payload"]["statement_id"] for e in await events(migrated_database)]
    assert [i for i in stored if i in {r.id for r in rows}] == [r.id for r in rows]
    # A retry of one statement is a no-op; a conflicting one changes nothing.
    [again] = await service.statements.record_statements(ANA, texts(singly[0]))
    assert again.statement_json == rows[0].statement_json
    with pytest.raises(AlreadyExists):
        await service.statements.record_statements(
            ANA, texts({**singly[0], "result": {"success": True}})
        )
    assert len(await events(migrated_database)) == 6


async def test_one_statement_on_postgresql_sends_no_begin(
    service: LearningService, migrated_database: Database
) -> None:
    """Its reads and its one write each run outside a transaction (no BEGIN, no COMMIT
    round trips); a statement that changes an activity definition (more writes) is
    stored in a transaction."""
    if migrated_database.dialect != "postgresql":
        pytest.skip("SQLite stores every batch in a transaction (no round trips to save)")
    with in_transaction(migrated_database) as seen:
        await service.statements.record_statements(ANA, texts(statement(id=str(uuid.uuid4()))))
        assert seen == [False, False]  # the reads (one SELECT), the write
        seen.clear()
        named = statement(object={"id": ACT + "q1", "definition": {"name": {"en": "new"}}})
        await service.statements.record_statements(ANA, texts(named))
        assert True in seen
    definition = (await service.activities.get_activity(ANA, ACT + "q1"))["definition"]
    assert definition == {"name": {"en": "new"}}
