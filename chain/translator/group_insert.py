"""Group commit of queued records: concurrent submissions share one transaction.

Queued one by one, every SubmitForAnchoring call was its own transaction: on PostgreSQL
three round trips (BEGIN, INSERT .. RETURNING, COMMIT), each a loopback send that wakes
a server backend (a fifth of the translator's CPU in the ingest benchmark's profile, and
a wait for the backend's turn on a loaded machine); on SQLite one write-lock turn each.
Here the records that arrive while one insert is in flight wait for it, and then go
together, with one multi-row INSERT (:meth:`ChainStore.insert_records`). Each caller
still gets its own answer: its stored row, or :class:`DuplicateRecord` with the row
already stored under its key (as :meth:`ChainStore.insert_record` raises it).
"""

from __future__ import annotations

import asyncio

from chain.translator.storage import ChainStore, DuplicateRecord, NewRecord, RecordRow

# Records in one INSERT at most (a larger backlog goes in several, one after the other).
MAX_GROUP = 256

_Waiter = asyncio.Future[RecordRow]


class GroupInsert:
    """Queues anchorable (PENDING) records for :class:`ChainStore`, grouped."""

    def __init__(self, store: ChainStore, *, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._waiting: list[tuple[NewRecord, _Waiter]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.groups = 0  # INSERTs issued (for tests and figures)

    async def insert(self, new: NewRecord) -> RecordRow:
        """Queue ``new`` with whatever else is waiting; returns its stored row, or raises
        :class:`DuplicateRecord` if its key was taken (by an earlier record or by an
        earlier one of the same group). A caller cancelled before its group was taken
        stores nothing."""
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((new, waiter))
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not waiter.get_loop():
            self._flusher = asyncio.create_task(self._flush_all())
        return await waiter

    async def _flush_all(self) -> None:
        group: list[tuple[NewRecord, _Waiter]] = []
        try:
            while self._waiting:
                group = self._waiting[: self.max_group]
                del self._waiting[: self.max_group]
                group = [(new, waiter) for new, waiter in group if not waiter.done()]
                if group:
                    await self._flush(group)
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            for _, waiter in group + self._waiting:
                waiter.cancel()
            self._waiting.clear()
            raise

    async def _flush(self, group: list[tuple[NewRecord, _Waiter]]) -> None:
        first: dict[tuple[str, str], NewRecord] = {}
        for new, _ in group:
            first.setdefault((new.domain.value, new.record_id), new)
        self.groups += 1
        try:
            queued = await self.store.insert_records(list(first.values()))
        except Exception:
            # One bad record must not fail the others: each alone, with its own answer.
            await asyncio.gather(*(self._alone(new, waiter) for new, waiter in group))
            return
        for new, waiter in group:
            if waiter.done():
                continue
            key = (new.domain.value, new.record_id)
            row = queued.inserted.get(key)
            if row is not None and first[key] is new:
                waiter.set_result(row)
            else:
                waiter.set_exception(DuplicateRecord(row or queued.existing[key]))

    async def _alone(self, new: NewRecord, waiter: _Waiter) -> None:
        try:
            row = await self.store.insert_record(new)
        except Exception as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if not waiter.done():
            waiter.set_result(row)
