"""RegisterHumanity when a retry overlaps its first call, on both engines.

The identity service retries a registration whose answer it did not get, possibly while
the first call still runs; it takes ALREADY_EXISTS as a permanent refusal. So a retry
must answer the first call's outcome: never ALREADY_EXISTS for its own registration, never
a second transaction, never FAILED for a registration that landed. The registry here is a
TEST DOUBLE keeping the contract's rules (one commitment per account, one account per
commitment, one holder per key; a ``Registered`` event per registration); the overlaps are
made deterministic by pausing a send or holding both calls after their lookups
(test_learner_accounts.py and test_devnode.py register on a real dev node).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlalchemy.exc import IntegrityError

from chain.client import ChainEvent, EventPage, ExecutionFailed, TxResult
from chain.translator.humanity import HumanityRegistrar
from chain.translator.keys import KeyVault
from chain.translator.learner_accounts import LearnerAccount, LearnerAccounts
from chain.translator.signers import AuthorKeys
from chain.translator.storage import ANCHORED, FAILED, ChainStore, HumanityRow
from services.kit.auth import Principal
from services.kit.db import Database
from services.kit.errors import AlreadyExists
from services.kit.races import waits_on_lock

SERVICE = Principal("identity-svc", frozenset({"service"}))
COMMITMENT = 0xC0FFEE
KEY = "ab" * 32


@dataclass
class Registry:
    """The humanity registry's state and the faults of these tests."""

    account_of: dict[int, int] = field(default_factory=dict)  # commitment -> account
    commitment_of: dict[int, int] = field(default_factory=dict)  # account -> commitment
    log: list[ChainEvent] = field(default_factory=list)
    sends: int = 0  # register calls (each one a transaction, or refused at estimation)
    sending: asyncio.Event = field(default_factory=asyncio.Event)  # a send has begun
    paused: asyncio.Event | None = None  # when set up, a send waits for it
    lagging_reads: int = 0  # account_by_commitment misses registrations this many times

    def apply(self, account: int, commitment: int, key: str) -> ChainEvent:
        if account in self.commitment_of:
            raise ExecutionFailed("Failure reason: 'account already registered'")
        if commitment in self.account_of:
            raise ExecutionFailed("Failure reason: 'commitment already used'")
        self.account_of[commitment] = account
        self.commitment_of[account] = commitment
        event = ChainEvent(
            contract="humanity_registry",
            name="Registered",
            from_address=0x4E6,
            values={"account": account, "commitment": commitment, "ed25519_pubkey": key},
            keys=[account, commitment],
            data=[],
            block_number=len(self.log) + 1,
            tx_hash=0x7000 + len(self.log),
        )
        self.log.append(event)
        return event


@dataclass
class AccountRegistry:
    """The registry as one learner's account calls it."""

    state: Registry
    account: int

    async def account_by_commitment(self, commitment: int) -> int | None:
        if self.state.lagging_reads:
            self.state.lagging_reads -= 1
            return None
        return self.state.account_of.get(commitment)

    async def register(self, commitment: int, ed25519_pubkey: bytes) -> TxResult:
        self.state.sends += 1
        self.state.sending.set()
        if self.state.paused is not None:
            await self.state.paused.wait()
        event = self.state.apply(self.account, commitment, ed25519_pubkey.hex())
        assert event.tx_hash is not None
        return TxResult(event.tx_hash, event.block_number, "SUCCEEDED", None, 0, [event])

    async def events(self, name: str, *, keys: list[list[int]], from_block: int) -> EventPage:
        found = [e for e in self.state.log if [[k] for k in e.keys] == keys and e.name == name]
        return EventPage(found, None)


@dataclass
class Chain:
    registry: AccountRegistry

    async def close(self) -> None:
        pass


@dataclass
class Accounts:
    """Learner accounts without a node: one address per learner. ``gathering``: calls wait
    there (after their lookups, before their insert) until all its parties arrived."""

    registry: Registry
    gathering: asyncio.Barrier | None = None

    @staticmethod
    def address(user_id: str) -> int:
        return 0xACC0000 + sum(user_id.encode())

    async def account(self, user_id: str) -> LearnerAccount:
        if self.gathering is not None:
            await self.gathering.wait()
        return LearnerAccount(user_id, self.address(user_id), 0x1, None, "deployed", None)

    async def connect(self, user_id: str) -> Chain:
        return Chain(AccountRegistry(self.registry, self.address(user_id)))


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def accounts(registry: Registry) -> Accounts:
    return Accounts(registry)


def registrar(store: ChainStore, accounts: Accounts) -> HumanityRegistrar:
    """One translator replica's registrar."""
    keys = AuthorKeys(store, KeyVault(os.urandom(32)))
    return HumanityRegistrar(store, keys, cast(LearnerAccounts, accounts), None)


async def register(
    replica: HumanityRegistrar, user_id: str = "ana", request_id: str = "r1"
) -> HumanityRow:
    return await replica.register(SERVICE, user_id, hex(COMMITMENT), KEY, request_id)


def assert_one_registration(registry: Registry, *answers: HumanityRow) -> None:
    """One transaction reached the chain, and every answer is its outcome."""
    assert registry.sends == 1 and len(registry.log) == 1
    for answer in answers:
        assert answer.state == ANCHORED and answer.tx_hash == registry.log[0].tx_hash


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the condition never held")


async def test_a_retry_beside_its_first_call_answers_its_outcome(
    store: ChainStore, registry: Registry, accounts: Accounts
) -> None:
    replica = registrar(store, accounts)
    registry.paused = asyncio.Event()
    first = asyncio.create_task(register(replica))
    await registry.sending.wait()  # the first call is sending its transaction
    retry = asyncio.create_task(register(replica))
    # The retry finds the pending row and queues behind the first call (unserialized, it
    # would check the chain, find nothing yet and send a second transaction).
    await until(lambda: replica._finishing.users(COMMITMENT) == 2 or registry.sends == 2)
    registry.paused.set()
    assert_one_registration(registry, *await asyncio.gather(first, retry))
    assert replica._finishing.users(COMMITMENT) == 0  # its lock is forgotten


async def test_two_replicas_send_one_registration(
    chain_db: Database, store: ChainStore, registry: Registry, accounts: Accounts
) -> None:
    if chain_db.dialect != "postgresql":
        pytest.skip("replicas share a PostgreSQL database (SQLite is one process)")
    one, two = registrar(store, accounts), registrar(store, accounts)
    registry.paused = asyncio.Event()
    first = asyncio.create_task(register(one))
    await registry.sending.wait()
    retry = asyncio.create_task(register(two))
    # The other replica waits on the first one's advisory lock, not on a process lock.
    waited = await waits_on_lock(chain_db, retry)
    registry.paused.set()
    assert_one_registration(registry, *await asyncio.gather(first, retry))
    assert waited


async def test_a_twin_losing_the_insert_answers_the_first_outcome(
    store: ChainStore, registry: Registry, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica = registrar(store, accounts)
    answers = await racing_inserts(
        store, accounts, monkeypatch, register(replica), register(replica)
    )
    assert all(isinstance(a, HumanityRow) for a in answers), answers
    assert_one_registration(registry, *cast(list[HumanityRow], answers))


async def test_another_user_with_the_same_commitment_is_refused(
    store: ChainStore, registry: Registry, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica = registrar(store, accounts)
    answers = await racing_inserts(
        store, accounts, monkeypatch, register(replica, "ana", "r1"), register(replica, "bob")
    )
    registered = [a for a in answers if isinstance(a, HumanityRow)]
    refused = [a for a in answers if isinstance(a, AlreadyExists)]
    assert len(registered) == len(refused) == 1, answers
    assert_one_registration(registry, *registered)
    assert registry.account_of[COMMITMENT] == accounts.address(registered[0].user_id)
    # Later, too (the row is there now).
    loser = "bob" if registered[0].user_id == "ana" else "ana"
    with pytest.raises(AlreadyExists, match="already registered"):
        await register(replica, loser, "r3")


async def test_a_refusal_of_a_registration_this_account_holds_is_success(
    store: ChainStore, registry: Registry, accounts: Accounts
) -> None:
    # An earlier send landed, but the node the check asks has not caught up with it.
    landed = registry.apply(accounts.address("ana"), COMMITMENT, KEY)
    registry.lagging_reads = 1
    row = await register(registrar(store, accounts))
    assert registry.sends == 1  # refused at estimation: "account already registered"
    assert row.state == ANCHORED and row.tx_hash == landed.tx_hash
    stored = await store.humanity_by_commitment(COMMITMENT)
    assert stored is not None and stored.state == ANCHORED


async def test_a_commitment_another_account_holds_is_refused(
    store: ChainStore, registry: Registry, accounts: Accounts
) -> None:
    registry.apply(accounts.address("bob"), COMMITMENT, "cd" * 32)
    with pytest.raises(AlreadyExists, match="commitment already used"):
        await register(registrar(store, accounts))
    stored = await store.humanity_by_commitment(COMMITMENT)
    assert stored is not None and stored.state == FAILED


async def racing_inserts(
    store: ChainStore,
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    *calls: Awaitable[HumanityRow],
) -> list[HumanityRow | BaseException]:
    """Run ``calls`` together, all past their lookups (no row yet) before any inserts; one
    insert wins, the others hit the unique constraint. Their answers or errors."""
    accounts.gathering = asyncio.Barrier(len(calls))
    lost: list[IntegrityError] = []
    insert = store.insert_humanity

    async def spy(*args: Any) -> HumanityRow:
        try:
            return await insert(*args)
        except IntegrityError as exc:
            lost.append(exc)
            raise

    monkeypatch.setattr(store, "insert_humanity", spy)
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert len(lost) == len(calls) - 1, answers
    return answers
