"""Binding every signing key to its holder on chain: the registrar job and its store.

Every Ed25519 key the translator signs with (the custodial keys of users and of Keiko
services) or accepts (users' registered device keys) is queued in
``chain.key_registrations`` in the same transaction that stores it
(:meth:`ChainStore.put_key_record`, :meth:`ChainStore.set_registered_key`). The
:class:`KeyRegistrar` sends pending keys to the anchor contract's ``register_keys`` (up to
``batch_size`` keys per transaction) with each holder's subject
(:func:`chain.translator.authors.subject_of`) and custody kind, and records the block and
transaction that bound each key. A verifier reads the binding back with ``get_key`` and
learns whose key signed an entry without asking Keiko.

* A retry after a lost answer is safe: the contract treats a binding already made as a
  no-op, and the registrar reads the original block of such keys.
* A key the contract refuses (bound to another holder, or with another kind) fails alone:
  the registrar re-sends the rest of the batch one by one and marks that key ``failed``.
* Anything else (chain down, timeouts) is retried with exponential backoff.
  Several replicas may send the same pending key; the contract makes that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import func, or_, select, update

from chain.client import ExecutionFailed, KeyBinding, KeyRegistration, TxResult
from chain.translator.anchoring import describe_error
from chain.translator.authors import subject_of
from chain.translator.batching import BackoffPolicy
from chain.translator.felts import felt_to_hex
from chain.translator.storage import ANCHORED, FAILED, PENDING, key_registrations
from services.kit.clock import Clock
from services.kit.db import Database

log = structlog.get_logger("keiko.chain.key_directory")

REGISTERED = ANCHORED  # the state of a key bound on chain (same word as anchored records)
DEFAULT_BATCH_SIZE = 50
# Refusals that no retry can fix: the key already belongs to someone else.
_PERMANENT = ("key bound to another holder", "key bound with another kind")


class KeyDirectoryChain(Protocol):
    """What the registrar needs from the anchor contract."""

    async def register_keys(self, keys: list[KeyRegistration]) -> TxResult: ...

    async def get_key(self, public_key: bytes) -> KeyBinding | None: ...


@dataclass(frozen=True, slots=True)
class PendingKey:
    public_key: bytes
    holder_id: str
    custody: str
    attempts: int

    def registration(self) -> KeyRegistration:
        return KeyRegistration(self.public_key, subject_of(self.holder_id), self.custody)


@dataclass(frozen=True, slots=True)
class KeyRegistrationRow:
    public_key: bytes
    holder_id: str
    custody: str
    state: str
    attempts: int
    last_error: str | None
    tx_hash: int | None
    block: int | None


class KeyDirectoryStore:
    """The ``chain.key_registrations`` queue."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def due(self, limit: int) -> list[PendingKey]:
        c = key_registrations.c
        now = self.clock.now()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(c.public_key, c.holder_id, c.custody, c.attempts)
                .where(
                    c.state == PENDING, or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)
                )
                .order_by(c.created_at, c.public_key)
                .limit(limit)
            )
            return [
                PendingKey(bytes.fromhex(r.public_key), r.holder_id, r.custody, r.attempts)
                for r in rows
            ]

    async def next_due_at(self) -> datetime | None:
        c = key_registrations.c
        async with self.db.read() as conn:
            value = (
                await conn.execute(select(func.min(c.next_attempt_at)).where(c.state == PENDING))
            ).scalar_one_or_none()
        return value

    async def mark_registered(self, bound: Sequence[tuple[bytes, int | None, int]]) -> None:
        """``(public key, transaction or None, block)`` of keys now bound on chain."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            for public_key, tx_hash, block in bound:
                await s.execute(
                    update(key_registrations)
                    .where(key_registrations.c.public_key == public_key.hex())
                    .values(
                        state=REGISTERED,
                        tx_hash=None if tx_hash is None else felt_to_hex(tx_hash),
                        block=block,
                        registered_at=now,
                        last_error=None,
                        next_attempt_at=None,
                    )
                )

    async def mark_retry(
        self, keys: Sequence[PendingKey], error: str, policy: BackoffPolicy, rng: random.Random
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            for key in keys:
                attempts = key.attempts + 1
                values: dict[str, object] = {"attempts": attempts, "last_error": error[:2000]}
                if policy.exhausted(attempts):
                    values["state"] = FAILED
                    values["next_attempt_at"] = None
                else:
                    values["next_attempt_at"] = policy.next_attempt_at(attempts, now, rng)
                await s.execute(
                    update(key_registrations)
                    .where(key_registrations.c.public_key == key.public_key.hex())
                    .values(**values)
                )

    async def mark_failed(self, key: PendingKey, reason: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(key_registrations)
                .where(key_registrations.c.public_key == key.public_key.hex())
                .values(
                    state=FAILED,
                    attempts=key.attempts + 1,
                    last_error=reason[:2000],
                    next_attempt_at=None,
                )
            )

    async def get(self, public_key: bytes) -> KeyRegistrationRow | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(key_registrations).where(
                        key_registrations.c.public_key == public_key.hex()
                    )
                )
            ).first()
        if row is None:
            return None
        m = row._mapping
        return KeyRegistrationRow(
            public_key=public_key,
            holder_id=m["holder_id"],
            custody=m["custody"],
            state=m["state"],
            attempts=m["attempts"],
            last_error=m["last_error"],
            tx_hash=None if m["tx_hash"] is None else int(m["tx_hash"], 16),
            block=m["block"],
        )

    async def counts(self) -> dict[str, int]:
        c = key_registrations.c
        async with self.db.read() as conn:
            rows = await conn.execute(select(c.state, func.count()).group_by(c.state))
            return {str(state): int(n) for state, n in rows}


def _refusal(exc: BaseException) -> str | None:
    """The contract's reason when it refused the keys for good, else None."""
    if isinstance(exc, ExecutionFailed) and any(p in exc.reason for p in _PERMANENT):
        return exc.reason
    return None


class KeyRegistrar:
    """Sends pending keys to the on-chain key directory (see the module docstring)."""

    def __init__(
        self,
        store: KeyDirectoryStore,
        chain: KeyDirectoryChain,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backoff: BackoffPolicy | None = None,
        poll_interval: float = 5.0,
        send_timeout: float = 120.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.batch_size = batch_size
        self.backoff = backoff or BackoffPolicy(max_delay=timedelta(minutes=5))
        self.poll_interval = poll_interval
        self.send_timeout = send_timeout
        self._rng = rng or random.Random()
        self._nudge = asyncio.Event()

    def notify(self) -> None:
        """A key was queued: register it now rather than at the next poll."""
        self._nudge.set()

    async def step(self) -> int:
        """Register one batch of due keys; returns how many keys were settled (bound or
        refused for good). Transient failures are scheduled for a retry and re-raised."""
        pending = await self.store.due(self.batch_size)
        if not pending:
            return 0
        try:
            await self._send(pending)
        except Exception as exc:
            refusal = _refusal(exc)
            if refusal is None:
                await self.store.mark_retry(pending, describe_error(exc), self.backoff, self._rng)
                raise
            if len(pending) > 1:
                return await self._one_by_one(pending)
            await self.store.mark_failed(pending[0], refusal)
            log.error("chain.key_refused", key=pending[0].public_key.hex(), reason=refusal)
            return 1
        return len(pending)

    async def _one_by_one(self, pending: Sequence[PendingKey]) -> int:
        """A batch the contract refused: find the refused keys, bind the others."""
        settled = 0
        for key in pending:
            try:
                await self._send([key])
            except Exception as exc:
                refusal = _refusal(exc)
                if refusal is None:
                    await self.store.mark_retry([key], describe_error(exc), self.backoff, self._rng)
                    continue
                await self.store.mark_failed(key, refusal)
                log.error("chain.key_refused", key=key.public_key.hex(), reason=refusal)
            settled += 1
        return settled

    async def _send(self, keys: Sequence[PendingKey]) -> None:
        result = await asyncio.wait_for(
            self.chain.register_keys([k.registration() for k in keys]), self.send_timeout
        )
        if not result.succeeded:
            raise ExecutionFailed(result.revert_reason or "register_keys reverted")
        assert result.block_number is not None
        fresh = {
            int(e["key"]) for e in result.events if e.name == "KeyRegistered" and "key" in e.values
        }
        bound: list[tuple[bytes, int | None, int]] = []
        for key in keys:
            if int.from_bytes(key.public_key, "big") in fresh:
                bound.append((key.public_key, result.tx_hash, result.block_number))
                continue
            # Bound earlier (a retry after a lost answer): keep the original block.
            binding = await self.chain.get_key(key.public_key)
            if binding is None:  # pragma: no cover - the contract either binds or reverts
                raise ExecutionFailed("register_keys did not bind the key")
            bound.append((key.public_key, None, binding.registered_block))
        await self.store.mark_registered(bound)

    async def _wait_hint(self) -> float:
        due = await self.store.next_due_at()
        if due is None:
            return self.poll_interval
        now = self.store.clock.now()
        if due.tzinfo is None:
            due = due.replace(tzinfo=now.tzinfo)
        return max(0.005, min(self.poll_interval, (due - now).total_seconds()))

    async def run(self, stop: asyncio.Event) -> None:
        """Register until ``stop`` is set; errors are logged and never end the loop."""
        while not stop.is_set():
            self._nudge.clear()
            wait = self.poll_interval
            try:
                while await self.step() == self.batch_size:
                    pass  # a full batch: more may be waiting
                wait = await self._wait_hint()
            except Exception as exc:
                log.warning("chain.key_registration_failed", error=describe_error(exc))
                with contextlib.suppress(Exception):
                    wait = await self._wait_hint()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._nudge.wait())]
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await w


__all__ = [
    "REGISTERED",
    "KeyDirectoryChain",
    "KeyDirectoryStore",
    "KeyRegistrar",
    "KeyRegistrationRow",
    "PendingKey",
]
