"""Group commit of queued records (chain.translator.group_insert), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from chain.tests.translator_service.conftest import new_record
from chain.translator.group_insert import GroupInsert
from chain.translator.storage import PENDING, ChainStore, DuplicateRecord, NewRecord
from chain.translator.store_records import QueuedRecords


async def test_concurrent_records_share_inserts_and_each_gets_its_row(store: ChainStore) -> None:
    group = GroupInsert(store)
    news = [new_record(i) for i in range(40)]
    rows = await asyncio.gather(*(group.insert(new) for new in news))
    assert [r.record_id for r in rows] == [n.record_id for n in news]
    assert [r.leaf for r in rows] == [n.leaf for n in news]
    assert {r.status for r in rows} == {PENDING}
    assert len({r.seq for r in rows}) == 40
    assert group.groups < 40  # they went together, not one transaction each
    assert await store.count_records() == 40


async def test_a_key_taken_before_or_in_the_same_group_is_a_duplicate(store: ChainStore) -> None:
    group = GroupInsert(store)
    stored = await group.insert(new_record(1))
    other = replace(new_record(2), record_id="rec-1")  # rec-1 again, other data
    again = await asyncio.gather(
        group.insert(new_record(1)),
        group.insert(new_record(3)),
        group.insert(new_record(3)),
        return_exceptions=True,
    )
    assert isinstance(again[0], DuplicateRecord) and again[0].existing.seq == stored.seq
    assert not isinstance(again[1], BaseException) and again[1].record_id == "rec-3"
    assert isinstance(again[2], DuplicateRecord) and again[2].existing.seq == again[1].seq
    with pytest.raises(DuplicateRecord) as taken:
        await group.insert(other)
    assert taken.value.existing.leaf == stored.leaf  # the stored row, for the caller
    assert await store.count_records() == 2


class FailingGroups(ChainStore):
    """A store whose multi-row INSERT fails (as a bad row would make it fail)."""

    async def insert_records(self, news: Sequence[NewRecord]) -> QueuedRecords:
        raise RuntimeError("the group insert failed")


async def test_a_failing_group_falls_back_to_one_insert_each(store: ChainStore) -> None:
    group = GroupInsert(FailingGroups(store.db, store.clock))
    rows = await asyncio.gather(*(group.insert(new_record(i)) for i in range(5)))
    assert sorted(r.record_id for r in rows) == [f"rec-{i}" for i in range(5)]
    assert await store.count_records() == 5


async def test_a_cancelled_caller_before_its_group_stores_nothing(store: ChainStore) -> None:
    group = GroupInsert(store)
    first = asyncio.ensure_future(group.insert(new_record(1)))
    cancelled = asyncio.ensure_future(group.insert(new_record(2)))
    await asyncio.sleep(0)  # both queued; the flush has not taken them yet
    cancelled.cancel()
    assert (await first).record_id == "rec-1"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await store.count_records() == 1
