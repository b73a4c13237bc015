"""services.kit.locks: per-key process locks and PostgreSQL advisory locks."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.kit.db import POOL_SIZE, Database
from services.kit.locks import KeyedLocks, advisory_lock
from services.kit.races import waits_on_lock


async def test_keyed_locks_serialize_one_key_and_forget_it() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    entered = asyncio.Event()

    async def hold(name: str, key: str, leave: asyncio.Event | None = None) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            entered.set()
            if leave is not None:
                await leave.wait()
            order.append(f"{name} out")

    leave = asyncio.Event()
    first = asyncio.create_task(hold("a", "k", leave))
    await entered.wait()
    second = asyncio.create_task(hold("b", "k"))
    await asyncio.sleep(0)  # it runs up to its wait for the lock
    await hold("other", "k2")  # another key does not wait
    assert locks.users("k") == 2
    leave.set()
    await asyncio.gather(first, second)
    assert order == ["a in", "other in", "other out", "a out", "b in", "b out"]
    assert locks.users("k") == 0 and not locks._locks


async def test_advisory_lock_serializes_and_leaves_the_pool_to_the_work(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's (SQLite is one process)")
    released = asyncio.Event()
    held = asyncio.Event()

    async def first() -> None:
        async with advisory_lock(database, "test.lock"):
            held.set()
            await released.wait()

    holder = asyncio.create_task(first())
    await held.wait()

    async def second() -> None:
        async with advisory_lock(database, "test.lock"):
            pass

    waiter = asyncio.create_task(second())
    assert await waits_on_lock(database, waiter)
    released.set()
    await asyncio.gather(holder, waiter)

    # More holders than the pool has connections, each needing one for its work.
    async def work(i: int) -> int:
        async with advisory_lock(database, f"test.work.{i}"):
            await asyncio.sleep(0.05)  # all hold their lock at once
            async with database.transaction() as session:
                return i + int((await session.execute(text("SELECT 0"))).scalar_one())

    n = POOL_SIZE + 5
    assert await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(n))), 20) == list(
        range(n)
    )
