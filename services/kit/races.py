"""Test support: a client's retry racing its first attempt, made deterministic.

`twin_calls(db, call)` runs `call` twice at once, as a client does whose first attempt
timed out and who retries with the same request id while that attempt still runs. The
first call's transaction is held open after its work, just before its COMMIT, until the
second call is seen waiting on a lock (PostgreSQL: it blocks on a row the first wrote
and has not committed) or has finished; then the first commits. So the second always
misses the first's result in any lookup before its own writes, which is the race an
idempotency key has to survive. On SQLite the second waits for the write lock at its
BEGIN IMMEDIATE, which cannot be observed: it is given a moment instead.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.db import Database

__all__ = ["Twins", "twin_calls", "waits_on_lock"]

T = TypeVar("T")

_FIRST: contextvars.ContextVar[bool] = contextvars.ContextVar("keiko_race_first", default=False)
_POLL_S = 0.01
_SQLITE_GRACE_S = 0.3
_WAITING_ON_LOCKS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@dataclass(frozen=True)
class Twins(Generic[T]):
    first: T | BaseException
    second: T | BaseException
    # PostgreSQL only: the second call was seen waiting for the first one's commit.
    second_waited: bool
    # The second call finished while the first one's transaction was still open.
    second_finished_first: bool

    def results(self) -> tuple[T, T]:
        """Both results, or the first exception either call raised."""
        for outcome in (self.first, self.second):
            if isinstance(outcome, BaseException):
                raise outcome
        return self.first, self.second  # type: ignore[return-value]


async def twin_calls(
    db: Database, call: Callable[[], Awaitable[T]], *, hold: int = 1, timeout: float = 10.0
) -> Twins[T]:
    """Run `call` twice concurrently, the first holding its transaction open until the
    second waits on it (see the module). `hold`: which of the first call's transactions,
    in the order their work completes, is held (a call whose key is written after other
    transactions, such as a rate limit's, names that one)."""
    original = db.transaction
    held = asyncio.Event()
    release = asyncio.Event()
    completed = 0

    @asynccontextmanager
    async def transaction() -> AsyncIterator[AsyncSession]:
        nonlocal completed
        async with original() as session:
            yield session
            # Only after the work succeeded, before the COMMIT the context manager sends.
            if _FIRST.get() and not release.is_set():
                completed += 1
                if completed == hold:
                    held.set()
                    await asyncio.wait_for(release.wait(), timeout)

    async def first_call() -> T:
        _FIRST.set(True)
        return await call()

    async def second_call() -> T:
        return await call()

    db.transaction = transaction  # type: ignore[method-assign]
    try:
        first = asyncio.create_task(first_call())
        holding = asyncio.create_task(held.wait())
        await asyncio.wait({first, holding}, return_when=asyncio.FIRST_COMPLETED)
        holding.cancel()
        second = asyncio.create_task(second_call())
        waited = await waits_on_lock(db, second, timeout) if held.is_set() else False
        finished_first = second.done() and held.is_set() and not first.done()
        release.set()
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
    finally:
        release.set()
        del db.transaction  # the instance attribute: the class's method again
    return Twins(outcomes[0], outcomes[1], waited, finished_first)


async def waits_on_lock(db: Database, second: asyncio.Task[Any], timeout: float = 10.0) -> bool:
    """Whether `second` was seen waiting on a lock (PostgreSQL) before it finished; on
    SQLite, after a moment's grace, False."""
    if db.dialect != "postgresql":
        await asyncio.wait({second}, timeout=_SQLITE_GRACE_S)
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with db.read(snapshot=False) as conn:
        while not second.done() and loop.time() < deadline:
            if (await conn.execute(_WAITING_ON_LOCKS)).scalar_one() > 0:
                return True
            await asyncio.sleep(_POLL_S)
    return False
