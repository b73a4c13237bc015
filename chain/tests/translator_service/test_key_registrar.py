"""The key registrar binds every queued key on chain, once, and survives lost answers,
refusals and outages."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from chain.client import KeyBinding
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.authors import subject_of
from chain.translator.batching import BackoffPolicy
from chain.translator.key_directory import REGISTERED, KeyDirectoryStore, KeyRegistrar
from chain.translator.storage import FAILED, PENDING, ChainStore
from services.kit.clock import FixedClock


def key(i: int) -> bytes:
    return bytes([i]) * 32


@pytest.fixture
def directory(store: ChainStore, clock: FixedClock) -> KeyDirectoryStore:
    return KeyDirectoryStore(store.db, clock)


@pytest.fixture
def chain() -> FakeAnchorChain:
    return FakeAnchorChain()


def registrar(directory: KeyDirectoryStore, chain: FakeAnchorChain, size: int = 50) -> KeyRegistrar:
    policy = BackoffPolicy(initial=timedelta(seconds=1), max_delay=timedelta(seconds=8), jitter=0)
    return KeyRegistrar(directory, chain, batch_size=size, backoff=policy, rng=random.Random(1))


async def test_queued_keys_are_bound_in_batches_with_their_block(
    store: ChainStore, directory: KeyDirectoryStore, chain: FakeAnchorChain
) -> None:
    await store.put_key_record("ana", b"r1", key(1))
    await store.put_key_record("keiko-learning", b"r2", key(2), "service")
    await store.set_registered_key("bo", key(3), "humanity_registry")
    await store.set_registered_key("bo", key(3), "humanity_registry")  # queued once
    job = registrar(directory, chain, size=2)
    assert await job.step() == 2
    assert await job.step() == 1
    assert await job.step() == 0
    assert chain.key_sends == 2
    assert chain.keys[key(1)] == KeyBinding(
        key(1), subject_of("ana"), "custodial", chain.operator, 1, False, 0
    )
    assert chain.keys[key(2)].kind == "service" and chain.keys[key(3)].kind == "device"
    assert chain.keys[key(3)].subject == subject_of("bo")
    row = await directory.get(key(3))
    assert row is not None and row.state == REGISTERED and row.block == 2
    assert row.tx_hash == 0x9002
    assert await directory.counts() == {REGISTERED: 3}


async def test_a_lost_answer_is_retried_and_keeps_the_original_block(
    store: ChainStore, directory: KeyDirectoryStore, chain: FakeAnchorChain, clock: FixedClock
) -> None:
    await store.put_key_record("ana", b"r1", key(1))
    job = registrar(directory, chain)
    chain.lose_ack = True
    with pytest.raises(TimeoutError):
        await job.step()
    row = await directory.get(key(1))
    assert row is not None and row.state == PENDING and row.attempts == 1
    assert await job.step() == 0  # not due yet: backoff
    clock.advance(timedelta(seconds=2))
    chain.block += 5  # later blocks
    assert await job.step() == 1
    row = await directory.get(key(1))
    assert row is not None and row.state == REGISTERED
    assert row.block == 1 and row.tx_hash is None  # bound by the first transaction


async def test_a_refused_key_fails_alone(
    store: ChainStore, directory: KeyDirectoryStore, chain: FakeAnchorChain
) -> None:
    await store.put_key_record("ana", b"r1", key(1))
    await store.put_key_record("bo", b"r2", key(2))
    # Another deployment already bound key 2 to someone else.
    chain.keys[key(2)] = KeyBinding(key(2), subject_of("mallory"), "custodial", 1, 1, False, 0)
    assert await registrar(directory, chain).step() == 2
    ok, refused = await directory.get(key(1)), await directory.get(key(2))
    assert ok is not None and ok.state == REGISTERED
    assert refused is not None and refused.state == FAILED
    assert refused.last_error == "key bound to another holder"


async def test_an_outage_backs_off_and_the_job_keeps_running(
    store: ChainStore, directory: KeyDirectoryStore, chain: FakeAnchorChain
) -> None:
    await store.put_key_record("ana", b"r1", key(1))
    chain.down = True
    job = registrar(directory, chain)
    job.poll_interval = 0.02
    stop = asyncio.Event()
    task = asyncio.create_task(job.run(stop))
    await asyncio.sleep(0.1)
    row = await directory.get(key(1))
    assert row is not None and row.state == PENDING and row.attempts >= 1
    assert row.last_error is not None and "connection refused" in row.last_error
    stop.set()
    await asyncio.wait_for(task, 5)
