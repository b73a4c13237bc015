"""Idempotency keys claimed first in a write (`services.kit.idempotency`), on the engine of
the current pass: a replay, a twin that committed first, a twin that rolled back, and a
unique violation elsewhere (not a replay)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, UniqueConstraint, insert, select
from sqlalchemy.exc import IntegrityError

from services.kit.db import NAMING_CONVENTION, Database, is_unique_violation
from services.kit.idempotency import Replayed, claim
from services.kit.races import twin_calls, waits_on_lock

pytestmark = pytest.mark.schemas("alpha")

md = MetaData(schema="alpha", naming_convention=NAMING_CONVENTION)
keys = Table(
    "keys",
    md,
    Column("caller_id", String(20), primary_key=True),
    Column("request_id", String(20), primary_key=True),
    Column("result", JSON, nullable=False),
    Column("label", String(20), nullable=False),
    UniqueConstraint("label"),  # another rule a claim may break
)
work = Table("work", md, Column("id", String(20), primary_key=True))


async def create(db: Database) -> None:
    await db.create_all(md)


async def do(db: Database, work_id: str, request_id: str = "r1", label: str = "") -> str:
    """Claim the key, then do the work (one row), in one transaction."""
    try:
        async with db.transaction() as s:
            await claim(
                s,
                keys,
                {
                    "caller_id": "ana",
                    "request_id": request_id,
                    "result": [work_id],
                    "label": label or work_id,
                },
            )
            await s.execute(insert(work).values(id=work_id))
    except Replayed as first:
        return str(first.result[0])
    return work_id


async def work_ids(db: Database) -> list[str]:
    async with db.session() as s:
        return sorted((await s.execute(select(work.c.id))).scalars())


async def test_a_stored_key_replays_its_result(database: Database) -> None:
    await create(database)
    assert await do(database, "w1") == "w1"
    assert await do(database, "w2") == "w1"
    assert await do(database, "w3", request_id="r2") == "w3"
    assert await work_ids(database) == ["w1", "w3"]


async def test_a_twin_waiting_on_the_key_answers_with_the_first_result(
    database: Database,
) -> None:
    await create(database)
    n = iter(range(2))
    twins = await twin_calls(database, lambda: do(database, f"w{next(n)}"))
    if database.dialect == "postgresql":
        assert twins.second_waited
    assert twins.results() == ("w0", "w0")
    assert await work_ids(database) == ["w0"]


async def test_when_the_twin_rolls_back_the_waiting_call_does_the_work(
    database: Database,
) -> None:
    await create(database)
    claimed = asyncio.Event()
    give_up = asyncio.Event()

    async def failing_first() -> None:
        with pytest.raises(RuntimeError):
            async with database.transaction() as s:
                key = {"caller_id": "ana", "request_id": "r1", "result": ["w0"], "label": "a"}
                await claim(s, keys, key)
                claimed.set()
                await give_up.wait()
                raise RuntimeError("the first attempt fails after its claim")

    first = asyncio.create_task(failing_first())
    await claimed.wait()
    second = asyncio.create_task(do(database, "w1"))
    waited = await waits_on_lock(database, second)
    assert waited or database.dialect != "postgresql"
    give_up.set()
    await first
    assert await second == "w1"
    assert await work_ids(database) == ["w1"]


async def test_a_unique_violation_of_another_rule_is_not_a_replay(database: Database) -> None:
    await create(database)
    assert await do(database, "w1", request_id="r1", label="same") == "w1"
    with pytest.raises(IntegrityError) as caught:
        await do(database, "w2", request_id="r2", label="same")
    assert is_unique_violation(caught.value)
    assert await work_ids(database) == ["w1"]
