"""The anchoring engine reuses fee estimates (chain.translator.anchor_fees), against the
in-memory chain, whose node counts the estimations it ran and charges gas per leaf."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from starknet_py.net.client_models import EstimatedFee

from chain.tests.translator_service.fakes import BASE_GAS, FakeAnchorChain
from chain.tests.translator_service.test_engine import (
    assert_each_anchored_once,
    engine_for,
    queue,
    wait_until,
)
from chain.translator.anchor_fees import FeeReusePolicy, band_of
from chain.translator.anchoring import AnchoringEngine
from chain.translator.batching import BatchPolicy
from chain.translator.storage import ANCHORED, ChainStore
from chain.translator.watcher import ChainWatcher
from services.kit.clock import FixedClock

REFRESH = FeeReusePolicy(margin=1.5, refresh_sends=3, refresh_after=timedelta(minutes=1))


def fee_engine(
    store: ChainStore,
    chain: FakeAnchorChain,
    clock: FixedClock,
    fees: FeeReusePolicy = REFRESH,
    max_leaves: int = 4,
) -> AnchoringEngine:
    policy = BatchPolicy(max_leaves=max_leaves, max_wait=timedelta(milliseconds=500))
    return engine_for(store, chain, clock, policy=policy, fees=fees)


async def anchor(engine: AnchoringEngine, store: ChainStore, n: int, start: int) -> None:
    """Queue ``n`` records and seal and send every batch they fill."""
    await queue(store, n, start)
    await engine.step(force=True)


async def test_sends_reuse_an_estimate_until_it_is_refreshed(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    engine = fee_engine(store, chain, clock)
    await anchor(engine, store, 20, 0)  # five batches of four leaves: one band
    assert chain.sends == chain.applied == 5
    # Estimated for the 1st send, reused by the 2nd and 3rd, estimated again (after
    # refresh_sends = 3 sends) for the 4th, reused by the 5th.
    assert chain.estimates == 2
    clock.advance(timedelta(minutes=1))  # refresh_after: the estimate is stale
    await anchor(engine, store, 4, 20)
    assert chain.estimates == 3 and chain.applied == 6
    # (The minute also passed confirm_timeout: the first five were confirmed from chain
    # state, which costs no estimate.)
    await ChainWatcher(store, chain).catch_up()
    await assert_each_anchored_once(store, chain, 24)


async def test_without_reuse_every_send_is_estimated(store: ChainStore, clock: FixedClock) -> None:
    chain = FakeAnchorChain()
    engine = fee_engine(store, chain, clock, FeeReusePolicy(enabled=False))
    await anchor(engine, store, 20, 0)
    assert chain.sends == chain.applied == chain.estimates == 5
    assert engine.fees.known() == {}


async def test_a_send_refused_for_its_fee_is_re_estimated_and_anchored_once(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    engine = fee_engine(store, chain, clock)
    await anchor(engine, store, 4, 0)
    assert chain.estimates == 1
    # The gas price doubles: the reused bounds (1.5x the old price) are refused.
    chain.l2_price *= 2
    await anchor(engine, store, 4, 4)
    assert chain.refused == 1 and chain.estimates == 2
    assert chain.applied == 2
    batches = await store.list_batches()
    # Re-sent at once within the same attempt: no failure recorded, no backoff.
    assert [(b.state, b.last_error) for b in batches] == [(ANCHORED, None)] * 2
    assert await ChainWatcher(store, chain).catch_up() == 0  # confirmed from the receipts
    await assert_each_anchored_once(store, chain, 8)


async def test_a_send_reverted_out_of_gas_is_re_estimated_and_anchored_once(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = FakeAnchorChain()
    engine = fee_engine(store, chain, clock)
    await anchor(engine, store, 4, 0)
    # The batch now costs more gas than the reused bounds allow: included as REVERTED
    # (nothing anchored), then re-sent with a fresh estimate.
    chain.gas_per_leaf = BASE_GAS
    await anchor(engine, store, 4, 4)
    assert chain.estimates == 2
    assert chain.sends == 3 and chain.applied == 2  # the reverted send anchored nothing
    assert [b.state for b in await store.list_batches()] == [ANCHORED] * 2
    assert await ChainWatcher(store, chain).catch_up() == 0  # confirmed from the receipts
    await assert_each_anchored_once(store, chain, 8)


async def test_batches_of_very_different_sizes_use_their_own_band(
    store: ChainStore, clock: FixedClock
) -> None:
    """Gas grows with the leaves: a 1-leaf batch's estimate x 1.5 would not cover a
    64-leaf batch, so each size band keeps its own estimate."""
    chain = FakeAnchorChain(gas_per_leaf=BASE_GAS // 10)
    engine = fee_engine(store, chain, clock, max_leaves=64)
    await anchor(engine, store, 1, 0)
    await anchor(engine, store, 64, 1)
    await anchor(engine, store, 1, 65)
    await anchor(engine, store, 64, 66)
    assert chain.estimates == 2  # one per band, each reused once
    assert chain.sends == chain.applied == 4  # no send reverted for want of gas
    known = engine.fees.known()
    assert set(known) == {band_of("learning", 1), band_of("learning", 64)}
    assert (
        known[band_of("learning", 64)].l2_gas.max_amount
        > 3 * known[band_of("learning", 1)].l2_gas.max_amount
    )
    assert await ChainWatcher(store, chain).catch_up() == 0  # confirmed from the receipts
    await assert_each_anchored_once(store, chain, 130)


async def test_a_small_batch_reuses_a_larger_bands_estimate(
    store: ChainStore, clock: FixedClock
) -> None:
    """Gas does not fall as a batch grows: after a 64-leaf batch, a 1-leaf batch is sent
    with its bounds (no estimate of its own); a refusal drops both bands' estimates."""
    chain = FakeAnchorChain(gas_per_leaf=BASE_GAS // 10)
    engine = fee_engine(store, chain, clock, max_leaves=64)
    await anchor(engine, store, 64, 0)
    await anchor(engine, store, 1, 64)
    assert chain.estimates == 1 and chain.sends == chain.applied == 2
    assert set(engine.fees.known()) == {band_of("learning", 64)}
    chain.l2_price *= 2  # the reused bounds are refused now
    await anchor(engine, store, 1, 65)
    assert chain.refused == 1 and chain.estimates == 2 and chain.applied == 3
    assert set(engine.fees.known()) == {band_of("learning", 1)}
    await anchor(engine, store, 64, 66)  # the 1-leaf estimate does not cover it: estimated
    assert chain.estimates == 3 and chain.sends == chain.applied == 4
    assert await ChainWatcher(store, chain).catch_up() == 0
    await assert_each_anchored_once(store, chain, 130)


class SlowEstimates(FakeAnchorChain):
    """Estimation takes a while: concurrent sends would each estimate if not held."""

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee:
        await asyncio.sleep(0.05)
        return await super().estimate_anchor_batch(batch_id, root, leaf_count, domain)


async def test_concurrent_sends_of_a_band_make_one_estimate(
    store: ChainStore, clock: FixedClock
) -> None:
    chain = SlowEstimates()
    engine = engine_for(
        store,
        chain,
        clock,
        policy=BatchPolicy(max_leaves=4, max_wait=timedelta(milliseconds=500)),
        fees=REFRESH,
        max_in_flight=2,
        poll_interval=0.01,
    )
    await queue(store, 8)  # two full batches, sent side by side
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    try:
        await wait_until(lambda: _applied(chain, 2))
    finally:
        stop.set()
        await running
    assert chain.estimates == 1 and chain.sends == 2


async def _applied(chain: FakeAnchorChain, n: int) -> bool:
    return chain.applied >= n
