"""Critical sections: one task at a time per key in a process, one replica at a time on
PostgreSQL.

`KeyedLocks` serializes the tasks of one process per key (an asyncio lock each, forgotten
once no task holds or awaits it). `advisory_lock` serializes the replicas of a service on
PostgreSQL with a transaction-scoped advisory lock, held by a transaction of its own
while the work inside commits in its own transactions. That transaction holds a
connection of its own, outside the pool (`Database.lock_connection`): lock holders whose
work needs pooled connections could otherwise fill the pool and wait on each other. Take
the process lock first: one such connection per key and process, not one per waiting
task. SQLite, the embedded engine, is one process: there the process lock is all there
is and `advisory_lock` does nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from sqlalchemy import text

from services.kit.db import Database

__all__ = ["KeyedLocks", "advisory_key", "advisory_lock"]


def advisory_key(name: str) -> int:
    """The ``pg_advisory_xact_lock`` key of `name`: the first 8 bytes of SHA-256(name), as
    a signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@asynccontextmanager
async def advisory_lock(db: Database, name: str) -> AsyncIterator[None]:
    """Hold the advisory lock `name` across the replicas (PostgreSQL; released when its
    transaction ends, also on error). On SQLite, nothing."""
    if db.dialect != "postgresql":
        yield
        return
    async with db.lock_connection() as conn, conn.begin():
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
        yield


class KeyedLocks:
    """An asyncio lock per key for the tasks of this process."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: dict[Hashable, int] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    def users(self, key: Hashable) -> int:
        """Tasks holding or awaiting the lock of `key`."""
        return self._users.get(key, 0)
