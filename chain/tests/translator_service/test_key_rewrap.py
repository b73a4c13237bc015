"""KEK rotation: custodial keys move to the current KEK, same key pairs, once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.keys import KeyVault, inspect_record, kek_id
from chain.translator.service import ChainTranslator
from chain.translator.servicer import key_rewrap_job
from chain.translator.storage import ChainStore
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition

OLD_KEK, NEW_KEK = os.urandom(32), os.urandom(32)
MESSAGE = b"canonical statement bytes"


def translator(
    store: ChainStore, clock: FixedClock, vault: KeyVault | Callable[[], KeyVault]
) -> ChainTranslator:
    chain = FakeAnchorChain()
    engine = AnchoringEngine(store, chain, clock, EngineSettings())
    return ChainTranslator(store, vault, chain, engine)


async def test_rotation_rewraps_every_old_record_once_and_keeps_the_key_pairs(
    store: ChainStore, clock: FixedClock
) -> None:
    before = translator(store, clock, KeyVault(OLD_KEK))
    learners = [f"learner-{i}" for i in range(5)]
    public_keys = {}
    for learner in learners:
        record = await before.keys.custodial_record(learner, create=True)
        assert record is not None
        public_keys[learner] = inspect_record(record).public_key

    # no previous KEK configured: nothing can need moving, nothing is read
    assert await translator(store, clock, KeyVault(OLD_KEK)).keys.rewrap_custodial_keys() == (0, 0)

    rotated = translator(store, clock, KeyVault(NEW_KEK, [OLD_KEK]))
    await rotated.keys.custodial_record("late-learner", create=True)  # already under the new KEK
    assert await rotated.keys.rewrap_custodial_keys(page_size=2) == (6, 5)  # paged: 2+2+2
    assert await rotated.keys.rewrap_custodial_keys(page_size=2) == (6, 0)  # nothing left

    new_only = KeyVault(NEW_KEK)  # the old KEK can now be dropped
    old_only = KeyVault(OLD_KEK)
    for learner in learners:
        record = await store.get_key_record(learner)
        assert record is not None
        assert inspect_record(record).kek_id == kek_id(NEW_KEK)
        assert new_only.public_key(record) == public_keys[learner]
        signature = new_only.sign(record, learner, MESSAGE)
        assert len(signature) == 64
        with pytest.raises(FailedPrecondition, match="unknown key-encryption key"):
            old_only.sign(record, learner, MESSAGE)


async def test_a_record_under_a_forgotten_kek_is_skipped_not_fatal(
    store: ChainStore, clock: FixedClock
) -> None:
    lost = KeyVault(os.urandom(32)).generate("ana")  # its KEK is configured nowhere
    old = KeyVault(OLD_KEK).generate("ben")
    await store.put_key_record("ana", lost.record, lost.public_key)
    await store.put_key_record("ben", old.record, old.public_key)
    rotated = translator(store, clock, KeyVault(NEW_KEK, [OLD_KEK]))
    assert await rotated.keys.rewrap_custodial_keys() == (2, 1)
    assert await store.get_key_record("ana") == lost.record


async def test_a_record_swapped_meanwhile_is_not_overwritten(
    store: ChainStore, clock: FixedClock
) -> None:
    vault = KeyVault(NEW_KEK, [OLD_KEK])
    old = KeyVault(OLD_KEK).generate("ana")
    await store.put_key_record("ana", old.record, old.public_key)
    first = vault.rewrap(old.record, "ana")
    assert await store.replace_key_record("ana", old.record, first)
    # a second replica that read the old record too: its swap does nothing
    assert not await store.replace_key_record("ana", old.record, vault.rewrap(old.record, "ana"))
    assert await store.get_key_record("ana") == first


async def test_the_startup_job_rewraps_and_survives_a_missing_kek(
    store: ChainStore, clock: FixedClock
) -> None:
    old = KeyVault(OLD_KEK).generate("ana")
    await store.put_key_record("ana", old.record, old.public_key)

    def no_kek() -> KeyVault:
        raise RuntimeError("KEIKO_KEK is required")

    # a vault that cannot load: the job logs and returns, nothing changes
    await key_rewrap_job(translator(store, clock, no_kek))(asyncio.Event())
    assert await store.get_key_record("ana") == old.record

    await key_rewrap_job(translator(store, clock, KeyVault(NEW_KEK, [OLD_KEK])))(asyncio.Event())
    record = await store.get_key_record("ana")
    assert record is not None and inspect_record(record).kek_id == kek_id(NEW_KEK)
