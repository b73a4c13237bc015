"""The anchoring engine and the chain watcher against an in-memory chain (test double)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from starknet_py.net.client_models import ResourceBoundsMapping

from chain.client import TxResult
from chain.tests.translator_service.conftest import new_record
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BackoffPolicy, BatchPolicy, BreakerState, Domain
from chain.translator.merkle import verify_inclusion
from chain.translator.storage import (
    ANCHORED,
    FAILED,
    PENDING,
    SEALED,
    SUBMITTED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_BATCH_ANCHORED,
    TOPIC_INTERACTION_ANCHORED,
    ChainStore,
    outbox,
)
from chain.translator.watcher import ChainWatcher
from services.kit.clock import FixedClock


def settings(**overrides: object) -> EngineSettings:
    base: dict[str, object] = {
        "policy": BatchPolicy(max_leaves=4, max_wait=timedelta(milliseconds=500)),
        "backoff": BackoffPolicy(
            initial=timedelta(seconds=1), multiplier=2.0, max_delay=timedelta(seconds=30), jitter=0
        ),
        "confirm_timeout": timedelta(seconds=30),
        "breaker_failure_threshold": 2,
        "breaker_reset_timeout": timedelta(seconds=10),
    }
    base.update(overrides)
    return EngineSettings(**base)  # type: ignore[arg-type]


def engine_for(
    store: ChainStore, chain: FakeAnchorChain, clock: FixedClock, **overrides: object
) -> AnchoringEngine:
    return AnchoringEngine(store, chain, clock, settings(**overrides), rng=random.Random(7))


async def queue(store: ChainStore, n: int, start: int = 0, learner: str = "ana") -> None:
    for i in range(start, start + n):
        await store.insert_record(new_record(i, learner))


async def outbox_topics(store: ChainStore) -> dict[str, int]:
    async with store.db.session() as s:
        rows = (
            await s.execute(select(outbox.c.topic, func.count()).group_by(outbox.c.topic))
        ).all()
    return {topic: count for topic, count in rows}


async def assert_each_anchored_once(store: ChainStore, chain: FakeAnchorChain, n: int) -> None:
    rows = [await store.get_record(Domain.LEARNING, f"rec-{i}") for i in range(n)]
    assert all(r is not None and r.status == ANCHORED for r in rows)
    # Every record sits in exactly one anchored batch, whose root is the chain's.
    seen: dict[int, int] = {}
    for r in rows:
        assert r is not None and r.batch_id is not None and r.proof is not None
        on_chain = chain.batches[r.batch_id]
        assert r.root == on_chain.root and r.block == on_chain.block_number
        assert verify_inclusion(
            r.leaf, r.leaf_index or 0, r.proof, on_chain.root, leaf_count=on_chain.leaf_count
        )
        seen[r.leaf] = seen.get(r.leaf, 0) + 1
    assert set(seen.values()) == {1}
    assert sum(b.leaf_count for b in chain.batches.values()) == n
    assert chain.applied == len(chain.batches)


async def test_batches_close_at_n_leaves_or_after_t(store: ChainStore, clock: FixedClock) -> None:
    chain = FakeAnchorChain()
    engine = engine_for(store, chain, clock)
    await queue(store, 10)
    sealed = await engine.seal_ready()
    assert [b.leaf_count for b in sealed] == [4, 4]
    assert await store.unbatched_count() == 2
    clock.advance(timedelta(milliseconds=499))
    assert await engine.seal_ready() == []
    clock.advance(timedelta(milliseconds=1))
    sealed += await engine.seal_ready()
    assert [b.leaf_count for b in sealed] == [4, 4, 2]
    assert len({b.batch_id for b in sealed}) == 3
    # Each record got its batch, index and a proof reaching the batch root.
    for batch in sealed:
        members = await store.records_of_batch(batch.batch_id)
        assert [m.leaf_index for m in members] == list(range(batch.leaf_count))
        for m in members:
            assert m.proof is not None and m.status == PENDING
            assert verify_inclusion(
                m.leaf, m.leaf_index or 0, m.proof, batch.root, leaf_count=batch.leaf_count
            )


async def test_idle_engine_waits_long_busy_engine_short(
    store: ChainStore, clock: FixedClock
) -> None:
    """Nothing in flight: the engine waits idle_poll_interval (submissions notify() it);
    a queued record brings the wait down to its batch deadline (poll_interval at most)."""
    engine = engine_for(store, FakeAnchorChain(), clock, poll_interval=0.1, idle_poll_interval=2.0)
    assert await engine._wait_hint() == 2.0
    await queue(store, 1)
    assert await engine._wait_hint() == 0.1
    clock.advance(timedelta(milliseconds=450))
    assert abs(await engine._wait_hint() - 0.05) < 1e-6


async def test_a_send_is_confirmed_from_its_receipt_and_the_event_changes_nothing(
    store: ChainStore, clock: FixedClock
) -> None:
    """A successful send's receipt holds its BatchAnchored event: the batch and its
    records are anchored at once, each announced once; the watcher reading the same
    events later confirms nothing again."""
    chain = FakeAnchorChain()
    engine = engine_for(store, chain, clock)
    await queue(store, 10)
    await engine.step(force=True)
    assert chain.sends == 3
    await assert_each_anchored_once(store, chain, 10)
    batch = (await store.list_batches())[0]
    assert batch.confirmed_by == "receipt" and batch.tx_hash == chain.log[0].tx_hash
    assert batch.block == chain.log[0].block_number
    assert await ChainWatcher(store, chain).catch_up() == 0
    assert await outbox_topics(store) == {TOPIC_INTERACTION_ANCHORED: 10, TOPIC_BATCH_ANCHORED: 3}


async def test_anchor_then_confirm_from_events_publishes_once(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(receipt_events=False)
    engine = engine_for(store, chain, clock)
    watcher = ChainWatcher(store, chain, chunk_size=2)
    await queue(store, 10)
    await engine.step(force=True)
    assert chain.sends == 3
    assert {b.state for b in await store.list_batches()} == {SUBMITTED}
    record = await store.get_record(Domain.LEARNING, "rec-0")
    assert record is not None and record.status == PENDING and record.tx_hash is not None
    # The watcher pages through the events (chunk 2, 3 events) and confirms all three.
    assert await watcher.catch_up() == 3
    await assert_each_anchored_once(store, chain, 10)
    batch = (await store.list_batches())[0]
    assert batch.confirmed_by == "event" and batch.tx_hash == chain.log[0].tx_hash
    # Replaying events (a crash before the cursor moved) announces nothing twice.
    assert await watcher.catch_up() == 0
    assert await outbox_topics(store) == {TOPIC_INTERACTION_ANCHORED: 10, TOPIC_BATCH_ANCHORED: 3}
    cursor = await watcher.cursor()
    assert cursor.from_block == chain.block + 1 and cursor.continuation_token is None


async def test_watcher_resumes_from_persisted_continuation(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(receipt_events=False)
    engine = engine_for(store, chain, clock)
    await queue(store, 12)
    await engine.step(force=True)
    first = ChainWatcher(store, chain, chunk_size=1)
    assert await first.poll_once() == (1, True)
    cursor = await first.cursor()
    assert cursor.continuation_token is not None and cursor.to_block == chain.block
    # A new process continues from the stored token rather than rescanning.
    second = ChainWatcher(store, chain, chunk_size=1)
    assert await second.catch_up() == 2
    await assert_each_anchored_once(store, chain, 12)


async def test_outage_backoff_and_breaker_then_exactly_once(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(down=True)
    engine = engine_for(store, chain, clock)
    await queue(store, 12)
    await engine.step()
    # Two transport failures open the breaker; the third batch is not even tried.
    assert engine.breaker.state is BreakerState.OPEN
    batches = await store.list_batches()
    assert [b.attempts for b in batches] == [1, 1, 0]
    assert batches[0].next_attempt_at == clock.now() + timedelta(seconds=1)
    assert batches[0].last_error is not None and "refused" in batches[0].last_error
    status = engine.status()
    assert status.breaker.state is BreakerState.OPEN and status.last_error

    # Backoff elapsed but the breaker is still open: nothing goes out.
    clock.advance(timedelta(seconds=2))
    await engine.send_due()
    assert [b.attempts for b in await store.list_batches()] == [1, 1, 0]

    # More records arrive during the outage: they are queued, nothing is lost.
    await queue(store, 4, start=12)
    await engine.seal_ready()
    assert len(await store.list_batches()) == 4

    # After the reset timeout one probe goes through, fails, and the breaker reopens.
    clock.advance(timedelta(seconds=9))
    await engine.send_due()
    assert engine.breaker.state is BreakerState.OPEN
    assert [b.attempts for b in await store.list_batches()] == [2, 1, 0, 0]
    second = (await store.list_batches())[0]
    assert second.next_attempt_at == clock.now() + timedelta(seconds=2)  # doubled

    # The chain comes back: the next probe succeeds, the breaker closes, all go out.
    chain.down = False
    clock.advance(timedelta(seconds=11))
    await engine.send_due()
    assert engine.breaker.state is BreakerState.CLOSED
    await engine.send_due()
    assert {b.state for b in await store.list_batches()} == {ANCHORED}
    assert await ChainWatcher(store, chain).catch_up() == 0
    await assert_each_anchored_once(store, chain, 16)


async def test_crash_between_seal_and_send_then_restart(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    crashed = engine_for(store, chain, clock)
    await queue(store, 8)
    await crashed.seal_ready()  # the process dies here: sealed, nothing sent
    del crashed
    assert {b.state for b in await store.list_batches()} == {SEALED}
    restarted = engine_for(store, chain, clock)
    await restarted.step()
    assert chain.sends == 2
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 8)


async def test_first_send_skips_the_chain_check_later_ones_do_not(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(lose_ack=True)
    engine = engine_for(store, chain, clock)
    await queue(store, 4)
    [batch] = await engine.seal_ready()
    await engine.send_due()  # first claim: sent at once, its answer is lost
    assert (chain.checks, chain.sends) == (0, 1)
    clock.advance(timedelta(seconds=5))
    await engine.send_due()  # the retry asks the chain first and finds it there
    assert (chain.checks, chain.sends) == (1, 1)
    row = await store.get_batch(batch.batch_id)
    assert row is not None and row.state == ANCHORED and row.confirmed_by == "chain_state"


async def test_a_lapsed_claim_is_checked_on_chain_before_sending(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    await queue(store, 4)
    [batch] = await engine_for(store, chain, clock).seal_ready()
    # A replica claimed it and died (it may have sent it): its claim lapses.
    [claimed] = await store.claim_due_batches(1, timedelta(seconds=15))
    assert claimed.first_claim
    clock.advance(timedelta(seconds=16))
    [again] = await store.claim_due_batches(1, timedelta(seconds=15))
    assert again.batch_id == batch.batch_id and not again.first_claim
    await store.release([batch.batch_id])
    await engine_for(store, chain, clock).send_due()
    assert (chain.checks, chain.sends) == (1, 1)


async def test_send_landed_but_ack_lost_is_reconciled_not_resent(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(lose_ack=True)
    engine = engine_for(store, chain, clock)
    await queue(store, 4)
    await engine.step()
    batch = (await store.list_batches())[0]
    assert batch.state == SEALED and batch.attempts == 1 and chain.applied == 1
    # A restarted engine (or the retry) checks get_batch first and confirms from chain.
    clock.advance(timedelta(seconds=1))
    restarted = engine_for(store, chain, clock)
    await restarted.send_due()
    assert chain.sends == 1  # never sent twice
    batch = (await store.list_batches())[0]
    assert batch.state == ANCHORED and batch.confirmed_by == "chain_state"
    assert batch.tx_hash == chain.log[0].tx_hash  # found through the event
    await assert_each_anchored_once(store, chain, 4)
    # The watcher then sees the event of an already anchored batch: nothing new.
    assert await ChainWatcher(store, chain).catch_up() == 0
    assert await outbox_topics(store) == {TOPIC_INTERACTION_ANCHORED: 4, TOPIC_BATCH_ANCHORED: 1}


async def test_submitted_batch_unconfirmed_is_rechecked_not_resent(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(receipt_events=False)
    engine = engine_for(store, chain, clock)
    await queue(store, 4)
    await engine.step()
    assert (await store.list_batches())[0].state == SUBMITTED
    clock.advance(timedelta(seconds=31))  # no watcher ran: the engine re-checks the chain
    await engine.send_due()
    assert chain.sends == 1
    assert (await store.list_batches())[0].state == ANCHORED


async def test_exhausted_attempts_fail_visibly_then_retry(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain(down=True)
    policy = BackoffPolicy(initial=timedelta(seconds=1), jitter=0, max_attempts=2)
    engine = engine_for(store, chain, clock, backoff=policy, breaker_failure_threshold=10)
    await queue(store, 4)
    await engine.step()
    clock.advance(timedelta(seconds=5))
    await engine.send_due()
    batch = (await store.list_batches())[0]
    assert batch.state == FAILED and batch.last_error and "gave up after 2" in batch.last_error
    record = await store.get_record(Domain.LEARNING, "rec-0")
    assert record is not None and record.status == FAILED and record.failure_reason
    assert (await outbox_topics(store)) == {TOPIC_ANCHOR_FAILED: 4}
    # FAILED -> PENDING on retry; the batch keeps its id and root.
    chain.down = False
    assert await engine.retry_failed(batch.batch_id)
    await engine.send_due()
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 4)


async def test_batch_id_taken_on_chain_with_another_root_fails(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    engine = engine_for(store, chain, clock)
    await queue(store, 4)
    [batch] = await engine.seal_ready()
    await chain.anchor_batch(batch.batch_id, 0x1234, 1, "learning")  # someone else's
    # The first claim sends without a chain check (nothing of ours can have landed): the
    # contract refuses the taken id, and the retry's check finds the other root.
    await engine.send_due()
    row = await store.get_batch(batch.batch_id)
    assert row is not None and row.state == SEALED and row.attempts == 1
    clock.advance(timedelta(seconds=5))
    await engine.send_due()
    row = await store.get_batch(batch.batch_id)
    assert row is not None and row.state == FAILED and "another root" in (row.last_error or "")


@pytest.mark.parametrize("replicas", [2])
async def test_two_replicas_seal_and_send_disjoint_batches(
    store: ChainStore, clock: FixedClock, replicas: int
) -> None:
    chain = FakeAnchorChain()
    engines = [engine_for(store, chain, clock) for _ in range(replicas)]
    await queue(store, 8)
    sealed = [b for e in engines for b in await e.seal_ready()]
    assert len(sealed) == 2 and sealed[0].batch_id != sealed[1].batch_id
    # Both engines look for due batches at once: each batch is claimed by one of them.
    await asyncio.gather(*(e.send_due() for e in engines))
    assert chain.sends == 2
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 8)


async def test_a_dead_replicas_claims_lapse_and_a_live_ones_are_renewed(
    store: ChainStore, clock: FixedClock
) -> None:
    """A replica killed mid-pass holds its claimed batches only ``claim_lease``: another
    replica then sends them, once. A live replica renews its claims (compare-and-set on
    the expiry it set), so a slow send is not taken over; once it recorded an outcome
    there is nothing left to renew."""
    lease = timedelta(seconds=15)
    chain = FakeAnchorChain()
    survivor = engine_for(store, chain, clock, claim_lease=lease)
    await queue(store, 8)
    assert len(await survivor.seal_ready()) == 2
    # The dead replica's pass: claimed, then nothing (SIGKILL before any send).
    dead_claims = await store.claim_due_batches(16, lease)
    assert len(dead_claims) == 2
    assert await survivor.send_due() == 0
    clock.advance(lease + timedelta(milliseconds=1))
    assert await survivor.send_due() == 2
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 8)
    assert await store.renew_claims(dead_claims, lease) == []  # outcomes recorded

    await queue(store, 4, start=8)
    assert len(await survivor.seal_ready()) == 1
    live = await store.claim_due_batches(16, lease)
    clock.advance(timedelta(seconds=10))
    renewed = await store.renew_claims(live, lease)
    assert [b.batch_id for b in renewed] == [b.batch_id for b in live]
    clock.advance(timedelta(seconds=10))  # past the first expiry, within the renewed one
    assert await survivor.send_due() == 0
    assert await store.renew_claims(live, lease) == []  # the old expiry is no token
    clock.advance(lease)
    assert await survivor.send_due() == 1


class GatedChain(FakeAnchorChain):
    """The fake chain whose ``anchor_batch`` waits until the test opens the gate: sends
    stay in flight as long as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            return await super().anchor_batch(
                batch_id, root, leaf_count, domain, resource_bounds=resource_bounds
            )
        finally:
            self.in_flight -= 1


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (bounded: 20 s) while the engine's tasks run."""
    for _ in range(2000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 20 s")


async def test_run_seals_while_sends_are_in_flight_and_anchors_each_once(
    store: ChainStore, clock: FixedClock
) -> None:
    """Pipelined: with sends held in flight the loop still seals the next batches, up to
    max_in_flight of them are sent at once (each under its own claim), and once the
    chain answers every record is anchored exactly once."""
    chain = GatedChain()
    engine = engine_for(store, chain, clock, max_in_flight=2, poll_interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    await queue(store, 4)
    engine.notify()
    await wait_until(lambda: asyncio.sleep(0, chain.in_flight == 1))
    await queue(store, 8, start=4)  # arrives while the first send is in flight
    engine.notify()

    async def sealed_all() -> bool:
        return await store.unbatched_count() == 0 and len(await store.list_batches()) == 3

    await wait_until(sealed_all)
    await wait_until(lambda: asyncio.sleep(0, chain.in_flight == 2))
    assert chain.sends == 0  # nothing has reached the chain yet: all held at the gate
    chain.gate.set()

    async def all_anchored() -> bool:
        return {b.state for b in await store.list_batches()} == {ANCHORED}

    await wait_until(all_anchored)
    stop.set()
    await running
    assert chain.most_in_flight == 2 and chain.sends == 3
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 12)


async def test_stopping_waits_for_the_sends_in_flight(store: ChainStore, clock: FixedClock) -> None:
    chain = GatedChain()
    engine = engine_for(store, chain, clock, poll_interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    await queue(store, 4)
    engine.notify()
    await wait_until(lambda: asyncio.sleep(0, chain.in_flight == 1))
    stop.set()
    await asyncio.sleep(0.05)
    assert not running.done()  # the send in flight is not abandoned half-way
    chain.gate.set()
    await asyncio.wait_for(running, 20)
    [batch] = await store.list_batches()
    assert batch.state == ANCHORED and chain.sends == 1


async def test_a_backlog_is_sealed_in_larger_batches(store: ChainStore, clock: FixedClock) -> None:
    """Adaptive size: beyond max_leaves waiting, one batch takes the backlog up to
    adaptive_max_leaves (an anchor costs the same whatever its size)."""
    engine = engine_for(store, FakeAnchorChain(), clock, adaptive_max_leaves=8)
    await queue(store, 11)
    sealed = await engine.seal_ready()
    assert [b.leaf_count for b in sealed] == [8]
    assert await store.unbatched_count() == 3  # below max_leaves: waits for max_wait
    clock.advance(timedelta(milliseconds=500))
    assert [b.leaf_count for b in await engine.seal_ready()] == [3]
    await queue(store, 4, start=11)  # exactly max_leaves: the configured size
    assert [b.leaf_count for b in await engine.seal_ready()] == [4]
    for batch in await store.list_batches():
        for m in await store.records_of_batch(batch.batch_id):
            assert m.proof is not None
            assert verify_inclusion(
                m.leaf, m.leaf_index or 0, m.proof, batch.root, leaf_count=batch.leaf_count
            )


async def test_partial_batches_wait_for_the_send_in_flight_then_go_as_one(
    store: ChainStore, clock: FixedClock
) -> None:
    """While a send is in flight, records past max_wait are not sealed into a batch of
    their own: they wait for the chain to take the next transaction and go together."""
    chain = GatedChain()
    engine = engine_for(store, chain, clock, poll_interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    await queue(store, 4)
    engine.notify()
    await wait_until(lambda: asyncio.sleep(0, chain.in_flight == 1))
    for i in range(3):  # three stragglers, each past its deadline while the send waits
        await queue(store, 1, start=4 + i)
        clock.advance(timedelta(seconds=1))
        engine.notify()
        await asyncio.sleep(0.05)
    assert len(await store.list_batches()) == 1 and await store.unbatched_count() == 3
    chain.gate.set()

    async def all_anchored() -> bool:
        found = await store.list_batches()
        return len(found) == 2 and {b.state for b in found} == {ANCHORED}

    await wait_until(all_anchored)
    stop.set()
    await running
    assert sorted(b.leaf_count for b in await store.list_batches()) == [3, 4]
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 7)


async def test_records_wait_behind_a_batch_ready_to_send_then_go_as_one(
    store: ChainStore, clock: FixedClock
) -> None:
    """With the send slot taken and a sealed batch already waiting for it, full batches
    are not sealed behind it: the backlog goes in one adaptive batch once the chain takes
    the waiting one (one transaction instead of one per max_leaves records)."""
    chain = GatedChain()
    engine = engine_for(
        store, chain, clock, max_in_flight=1, adaptive_max_leaves=16, poll_interval=0.01
    )
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    await queue(store, 4)
    engine.notify()
    await wait_until(lambda: asyncio.sleep(0, chain.in_flight == 1))
    await queue(store, 4, start=4)  # full: sealed, and waits for the slot
    engine.notify()

    async def two_sealed() -> bool:
        return len(await store.list_batches()) == 2

    await wait_until(two_sealed)
    await queue(store, 8, start=8)  # two batches' worth behind the waiting one
    engine.notify()
    await asyncio.sleep(0.05)
    assert len(await store.list_batches()) == 2 and await store.unbatched_count() == 8
    chain.gate.set()

    async def all_anchored() -> bool:
        found = await store.list_batches()
        return len(found) == 3 and {b.state for b in found} == {ANCHORED}

    await wait_until(all_anchored)
    stop.set()
    await running
    assert [b.leaf_count for b in await store.list_batches()] == [4, 4, 8]
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 16)
