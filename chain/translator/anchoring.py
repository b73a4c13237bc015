"""The anchoring engine: seals batches from queued records and anchors them, once each.

**Durability.** Records are queued in the database (``chain.records``) before
SubmitForAnchoring answers. :meth:`AnchoringEngine.seal_ready` closes a batch when a
domain has ``max_leaves`` unbatched records or its oldest one waited ``max_wait``
(:class:`~chain.translator.batching.BatchPolicy`); sealing allocates the batch id from the
database sequence and assigns records, indexes and proofs in one transaction
(:meth:`ChainStore.seal_batch`). A crash before that commit leaves the records unbatched;
after it, the sealed batch is durable and will be sent.

**Exactly once.** Before every send but a batch's very first (no engine ever claimed it,
so nothing can have sent it: :attr:`BatchRow.first_claim`) the engine asks the chain
``get_batch(batch_id)``: if the batch is there with our root (an earlier send landed and
its acknowledgement was lost, or another replica sent it), it is confirmed from chain
state and never re-sent; with another root the batch is FAILED (the id was taken). The
contract itself refuses a reused batch id or root, so a duplicate send cannot anchor
twice. A batch whose transaction succeeded is ``submitted``, and ``anchored`` at once from
the ``BatchAnchored`` event in its receipt (the event the chain watcher,
:mod:`chain.translator.watcher`, would read from the same block: confirming is
idempotent, so whichever comes second changes nothing). Without that event in the receipt
the watcher confirms it, and if it has not after ``confirm_timeout`` the engine re-checks
chain state (and re-sends only if the chain does not have it).

**Retries.** A failed attempt (node unreachable, timeout, transaction refused or
reverted) is retried after :class:`~chain.translator.batching.BackoffPolicy` delays,
durably (``next_attempt_at``). Transport failures feed a
:class:`~chain.translator.batching.CircuitBreaker`; while it is open nothing is sent. With
``max_attempts`` set, a batch that exhausts them is FAILED with the last reason and can
be retried (FAILED -> PENDING) with :meth:`AnchoringEngine.retry_failed`.

**Fees.** A send reuses the last fee estimate of its batch's size band
(:mod:`chain.translator.anchor_fees`) rather than estimating each transaction, which would
execute it on the node twice. A send those bounds no longer cover (refused for its
resources, or reverted out of gas: nothing anchored either way) is re-sent at once with a
fresh estimate, within the same attempt and under the same claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from chain.client import CallFailed, ExecutionFailed, TxResult
from chain.translator.anchor_fees import (
    AnchorFees,
    FeeReusePolicy,
    band_of,
    refused_for_fee,
    reverted_for_fee,
)
from chain.translator.batching import (
    BackoffPolicy,
    BatchPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from chain.translator.felts import felt_to_hex
from chain.translator.metrics import (
    ATTEMPT_FAILURES,
    BATCHES_CONFIRMED,
    BATCHES_SEALED,
    BATCHES_SENT,
    BREAKER_STATE,
    FEE_ESTIMATES,
    SEND_SECONDS,
)
from chain.translator.ports import BATCH_ANCHORED, AnchorChain
from chain.translator.storage import (
    SEALED,
    AnchorConfirmation,
    BatchRow,
    ChainStore,
)
from services.kit.clock import Clock

log = structlog.get_logger("keiko.chain.anchoring")


@dataclass(frozen=True)
class EngineSettings:
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # A submitted batch the watcher has not confirmed after this is re-checked on chain.
    confirm_timeout: timedelta = timedelta(seconds=30)
    # Upper bound of one anchor_batch call (sign, send, wait for the receipt).
    send_timeout: float = 120.0
    # A pass claims its due batches for this long and renews the claim every third of it
    # while it works, so a replica that dies (SIGKILL, a lost machine) holds its batches
    # only this long before another replica takes them over.
    claim_lease: timedelta = timedelta(seconds=15)
    # Wait of the run loop between passes while records or batches are in flight (it
    # wakes early on notify()).
    poll_interval: float = 0.1
    # Wait when nothing is in flight at all: submissions in this process notify() the
    # engine, so this only bounds how late it notices rows another process queued.
    # Polling at poll_interval with nothing to do cost an idle platform ~10% of a core.
    idle_poll_interval: float = 2.0
    # Passes woken by notify() are at least this far apart: a burst of submissions costs
    # one pass, not one per record.
    min_pass_interval: float = 0.02
    batches_per_pass: int = 16
    # Batches whose check + send + receipt may be in flight at once in :meth:`run` (each
    # claimed under its own lease). While they are, the loop keeps sealing.
    max_in_flight: int = 2
    # Adaptive batch size: when more than ``policy.max_leaves`` records wait in a domain,
    # one batch takes them all, up to this many. A chain transaction costs about the same
    # whatever the batch's size, so a backlog drains in fewer, larger batches. ``None``:
    # batches never exceed ``policy.max_leaves``.
    adaptive_max_leaves: int | None = None
    breaker_failure_threshold: int = 3
    breaker_reset_timeout: timedelta = timedelta(seconds=10)
    # Sends reuse a fee estimate per batch-size band (chain.translator.anchor_fees).
    fees: FeeReusePolicy = field(default_factory=FeeReusePolicy)


@dataclass(frozen=True)
class EngineStatus:
    """What GetChainInfo and operators see of the engine."""

    breaker: BreakerSnapshot
    last_error: str | None
    last_error_at: datetime | None
    batches_sent: int
    batches_confirmed: int


def receipt_confirmation(batch: BatchRow, result: TxResult) -> AnchorConfirmation | None:
    """The confirmation a successful send's receipt carries: its ``BatchAnchored`` event
    (decoded only from the anchor contract's address) for this batch id, in a block.
    None when the receipt has no such event or no block: the watcher confirms it then."""
    event = result.event(BATCH_ANCHORED)
    if event is None or result.block_number is None:
        return None
    if int(event["batch_id"]) != batch.batch_id:
        return None
    return AnchorConfirmation(
        batch.batch_id, int(event["root"]), result.block_number, result.tx_hash
    )


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ExecutionFailed | CallFailed):
        text = exc.reason
    return f"{type(exc).__name__}: {text}"[:500]


class AnchoringEngine:
    def __init__(
        self,
        store: ChainStore,
        chain: AnchorChain,
        clock: Clock,
        settings: EngineSettings | None = None,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.clock = clock
        self.settings = settings or EngineSettings()
        self.rng = rng or random.Random()
        self.breaker = CircuitBreaker(
            clock,
            failure_threshold=self.settings.breaker_failure_threshold,
            reset_timeout=self.settings.breaker_reset_timeout,
            on_transition=self._breaker_moved,
        )
        self.fees = AnchorFees(self.settings.fees, clock)
        self._on_change = on_change
        self._nudge = asyncio.Event()
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._sent = 0
        self._confirmed = 0
        self._in_flight: set[asyncio.Task[None]] = set()

    # -- status -------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        return EngineStatus(
            breaker=self.breaker.snapshot(),
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            batches_sent=self._sent,
            batches_confirmed=self._confirmed,
        )

    def notify(self) -> None:
        """A record was queued: run a pass now rather than at the next poll."""
        self._nudge.set()

    def _breaker_moved(self, previous: object, target: object) -> None:
        log.warning("chain circuit breaker", previous=str(previous), state=str(target))
        BREAKER_STATE.state(str(target))

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    # -- sealing ------------------------------------------------------------------------

    async def seal_ready(self, *, force: bool = False) -> list[BatchRow]:
        """Seal every batch the policy closes now (``force``: also partial ones)."""
        sealed: list[BatchRow] = []
        policy = self.settings.policy
        now = self.clock.now()
        # While batches are in flight (run()), a partial batch does not close at max_wait:
        # its records wait for the chain to take the next transaction and then go in one
        # batch with everything that arrived meanwhile. Full batches seal at once unless
        # one is already sealed and waiting to be sent.
        busy = bool(self._in_flight) and not force
        waiting = await self.store.unbatched_by_domain()  # a cheap read before any lock
        if busy and waiting and await self.store.ready_batches():
            # A sealed batch already waits for a free send slot: sealing more now would
            # only queue more transactions behind it. The records wait unbatched and go
            # in one batch (up to adaptive_max_leaves) once the chain takes that one.
            return sealed
        for domain, (count, oldest) in waiting.items():
            expired = now >= oldest + policy.max_wait
            if not (force or count >= policy.max_leaves or (expired and not busy)):
                continue
            left = count
            while not (busy and left < policy.max_leaves):
                batch = await self.store.seal_batch(domain, self._sizing(left), force=force)
                if batch is None:
                    break
                left -= batch.leaf_count
                log.info(
                    "batch sealed",
                    batch_id=felt_to_hex(batch.batch_id),
                    leaves=batch.leaf_count,
                    domain=domain.value,
                )
                BATCHES_SEALED.labels(domain.value).inc()
                sealed.append(batch)
        return sealed

    def _sizing(self, waiting: int) -> BatchPolicy:
        """The policy to seal with when ``waiting`` records wait: the configured one, or,
        with a backlog beyond ``max_leaves``, one batch of the backlog up to
        ``adaptive_max_leaves``."""
        policy = self.settings.policy
        cap = self.settings.adaptive_max_leaves
        if cap is None or waiting <= policy.max_leaves:
            return policy
        return replace(policy, max_leaves=min(cap, waiting))

    # -- sending ------------------------------------------------------------------------

    async def send_due(self) -> int:
        """Check/send every due batch while the breaker allows; returns batches handled."""
        if self.breaker.state is BreakerState.OPEN:
            return 0
        lease = self.settings.claim_lease
        handled = 0
        # One batch claimed at a time, oldest first: replicas share the due batches
        # instead of one taking them all, and a batch a dead replica held (its claim
        # expired) comes next rather than after a long pass of newer ones.
        while handled < self.settings.batches_per_pass:
            claimed = await self.store.claim_due_batches(1, lease)
            if not claimed:
                break
            batch = claimed[0]
            if not self.breaker.allow():
                await self.store.release([batch.batch_id])
                break
            held = {batch.seq: batch}
            renewing = asyncio.create_task(self._renew_claims(held, lease))
            try:
                await self._process(batch)
            finally:
                held.clear()
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            handled += 1
        return handled

    async def _renew_claims(self, held: dict[int, BatchRow], lease: timedelta) -> None:
        """Keep this pass's claims alive while it works through them (see claim_lease)."""
        while held:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                renewed = await self.store.renew_claims(list(held.values()), lease)
            except Exception as exc:  # the database is away: the claims may lapse
                log.warning("cannot renew batch claims", error=describe_error(exc))
                continue
            for batch in renewed:
                if batch.seq in held:
                    held[batch.seq] = batch

    async def _launch(self) -> None:
        """Claim due batches up to ``max_in_flight`` and start checking/sending each in its
        own task; the loop goes on sealing meanwhile. A claimed batch is ours while its
        task renews the claim, so two tasks (or replicas) never handle the same batch."""
        in_flight = self._in_flight
        free = self.settings.max_in_flight - len(in_flight)
        if free <= 0 or self.breaker.state is BreakerState.OPEN:
            return
        claimed = await self.store.claim_due_batches(free, self.settings.claim_lease)
        for position, batch in enumerate(claimed):
            if not self.breaker.allow():
                await self.store.release([b.batch_id for b in claimed[position:]])
                break
            task = asyncio.create_task(self._process_logged(batch))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    async def _process_logged(self, batch: BatchRow) -> None:
        held = {batch.seq: batch}
        renewing = asyncio.create_task(self._renew_claims(held, self.settings.claim_lease))
        try:
            await self._process(batch)
        except Exception:
            # A database error after the chain answered: the claim's lease expires and the
            # batch is checked on chain again (never sent twice: get_batch comes first).
            log.exception("anchoring a batch failed", batch_id=hex(batch.batch_id))
        finally:
            held.clear()
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            self._nudge.set()  # a slot is free: the loop claims the next batch now

    async def _process(self, batch: BatchRow) -> None:
        # A batch on its first claim cannot have been sent (by us or a replica): its chain
        # check, a contract call costing the node about a sixth of the send's CPU, is
        # skipped. (A batch id someone else took outside this deployment then reverts once,
        # and the retry's check marks it FAILED.)
        on_chain = None
        if not batch.first_claim:
            try:
                on_chain = await self.chain.get_batch(batch.batch_id)
            except Exception as exc:
                await self._failure(batch, exc, transport=True)
                return
        if on_chain is not None:
            self.breaker.record_success()
            if on_chain.root == batch.root:
                tx_hash = batch.tx_hash
                if tx_hash is None:
                    tx_hash = await self._find_tx(batch.batch_id, on_chain.block_number)
                confirmation = AnchorConfirmation(
                    batch.batch_id, batch.root, on_chain.block_number, tx_hash
                )
                if await self.store.confirm([confirmation], "chain_state"):
                    self._confirmed += 1
                    BATCHES_CONFIRMED.labels("chain_state").inc()
                    log.info("batch confirmed from chain state", batch_id=hex(batch.batch_id))
                    self._changed()
            else:
                reason = (
                    f"batch id {felt_to_hex(batch.batch_id)} is anchored on chain with "
                    f"another root {felt_to_hex(on_chain.root)}"
                )
                log.error("batch id conflict", batch_id=hex(batch.batch_id), reason=reason)
                if await self.store.mark_failed(batch.batch_id, reason):
                    self._changed()
            return
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(self._send(batch), self.settings.send_timeout)
        except ExecutionFailed as exc:
            # The node answered: the chain is up, the transaction would revert.
            self.breaker.record_success()
            await self._failure(batch, exc, transport=False)
            return
        except Exception as exc:
            await self._failure(batch, exc, transport=True)
            return
        self.breaker.record_success()
        SEND_SECONDS.observe(time.perf_counter() - started)
        if not result.succeeded:
            await self._failure(
                batch, RuntimeError(f"reverted: {result.revert_reason}"), transport=False
            )
            return
        self._sent += 1
        BATCHES_SENT.inc()
        check_at = self.clock.now() + self.settings.confirm_timeout
        await self.store.mark_submitted(
            batch.batch_id, result.tx_hash, result.block_number, check_at
        )
        from_receipt = receipt_confirmation(batch, result)
        if from_receipt is not None and await self.store.confirm([from_receipt], "receipt"):
            # Without waiting for the watcher's next poll (0.2 s, then a page of events
            # behind whatever else the process runs): under load that wait was most of
            # the time between a batch's send and its records being anchored.
            self._confirmed += 1
            BATCHES_CONFIRMED.labels("receipt").inc()
            log.info(
                "batch anchored (receipt)",
                batch_id=hex(batch.batch_id),
                tx_hash=hex(result.tx_hash),
                block=result.block_number,
            )
            self._changed()
            return
        log.info(
            "batch anchored (awaiting event)",
            batch_id=hex(batch.batch_id),
            tx_hash=hex(result.tx_hash),
            block=result.block_number,
        )

    async def _send(self, batch: BatchRow) -> TxResult:
        """Send ``batch`` with its band's reused fee estimate, or estimate first (and keep
        the estimate) when the band has none that is fresh. A send a reused estimate no
        longer covers (refused for its resources, or reverted out of gas: nothing was
        anchored either way) is re-sent at once with a fresh estimate; an estimate shows
        a transaction that would fail (ExecutionFailed) before anything is sent."""
        args = (batch.batch_id, batch.root, batch.leaf_count, batch.domain.value)
        band = band_of(batch.domain.value, batch.leaf_count)
        bounds = self.fees.bounds(band)
        if bounds is not None:
            try:
                result = await self.chain.anchor_batch(*args, resource_bounds=bounds)
            except Exception as exc:
                if not refused_for_fee(exc):
                    raise
                log.warning("reused fee refused; estimating again", reason=describe_error(exc))
                why = "refused"
            else:
                if result.succeeded or not reverted_for_fee(result.revert_reason):
                    return result
                log.warning("reused fee ran out; estimating again", reason=result.revert_reason)
                why = "reverted"
            self.fees.forget(band)
        else:
            why = "refresh"
        if not self.settings.fees.enabled:
            FEE_ESTIMATES.labels(why).inc()
            return await self.chain.anchor_batch(*args)  # the client estimates this send
        # One estimate per band at a time: a concurrent send of the band (max_in_flight)
        # waits for it and reuses it (sends from the one account are serialized anyway).
        async with self.fees.estimating(band):
            bounds = self.fees.bounds(band)
            if bounds is None:
                FEE_ESTIMATES.labels(why).inc()
                bounds = self.fees.learn(band, await self.chain.estimate_anchor_batch(*args))
        return await self.chain.anchor_batch(*args, resource_bounds=bounds)

    async def _find_tx(self, batch_id: int, block: int) -> int | None:
        """The transaction that anchored ``batch_id`` (its BatchAnchored event)."""
        try:
            page = await self.chain.events(
                BATCH_ANCHORED, keys=[[batch_id]], from_block=block, to_block=block
            )
        except Exception as exc:
            log.warning("cannot read the anchoring event", error=describe_error(exc))
            return None
        for event in page.events:
            if event["batch_id"] == batch_id:
                return event.tx_hash
        return None

    async def _failure(self, batch: BatchRow, exc: BaseException, *, transport: bool) -> None:
        reason = describe_error(exc)
        ATTEMPT_FAILURES.labels("transport" if transport else "chain").inc()
        if transport:
            self.breaker.record_failure()
        self._last_error, self._last_error_at = reason, self.clock.now()
        attempts = batch.attempts + 1
        backoff = self.settings.backoff
        if backoff.exhausted(attempts):
            await self.store.record_failure(batch.batch_id, error=reason, next_attempt_at=None)
            if await self.store.mark_failed(
                batch.batch_id, f"gave up after {attempts} attempts: {reason}"
            ):
                self._changed()
            log.error("batch failed", batch_id=hex(batch.batch_id), reason=reason)
            return
        next_at = backoff.next_attempt_at(attempts, self.clock.now(), self.rng)
        await self.store.record_failure(batch.batch_id, error=reason, next_attempt_at=next_at)
        log.warning(
            "anchoring attempt failed",
            batch_id=hex(batch.batch_id),
            attempt=attempts,
            retry_at=next_at.isoformat(),
            reason=reason,
        )

    async def retry_failed(self, batch_id: int) -> bool:
        """FAILED -> PENDING for one batch; it is re-checked and re-sent on the next pass."""
        done = await self.store.retry_failed(batch_id)
        if done:
            self.notify()
        return done

    # -- loop ---------------------------------------------------------------------------

    async def step(self, *, force: bool = False) -> None:
        await self.seal_ready(force=force)
        await self.send_due()

    async def _wait_hint(self) -> float:
        """Seconds until something is due (a batch deadline or a retry), capped."""
        wait = self.settings.poll_interval
        now = self.clock.now()
        candidates: list[datetime] = []
        oldest = await self.store.oldest_unbatched_at()
        if oldest is not None:
            candidates.append(oldest + self.settings.policy.max_wait)
        due = await self.store.next_due_at()
        if due is not None:
            candidates.append(due)
        retry_at = self.breaker.retry_at
        if retry_at is not None:
            candidates = [max(c, retry_at) for c in candidates]
        if candidates:
            wait = min(wait, max(0.0, (min(candidates) - now).total_seconds()))
        elif not self.breaker.retry_at:
            wait = max(wait, self.settings.idle_poll_interval)  # nothing in flight
        return max(wait, 0.005)

    async def run(self, stop: asyncio.Event) -> None:
        """Seal and send until ``stop`` is set. Errors are logged and never end the loop.

        Pipelined: each pass seals what the policy closes, then starts a task per claimed
        due batch (up to ``max_in_flight``) and does not wait for them; the next pass
        seals while they send. A finished task wakes the loop. On ``stop`` the sends in
        flight are awaited (each bounded by ``send_timeout``); if the loop is cancelled
        they are cancelled too, and their claims expire and are re-checked on chain."""
        log.info("anchoring engine started", policy=str(self.settings.policy))
        failures = 0
        in_flight = self._in_flight
        try:
            while not stop.is_set():
                self._nudge.clear()
                try:
                    await self.seal_ready()
                    await self._launch()
                    wait = await self._wait_hint()
                    if in_flight:
                        # Partial batches wait for a send to finish, which wakes us.
                        wait = max(wait, self.settings.poll_interval)
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("anchoring pass failed", failures=failures)
                    wait = min(5.0, self.settings.poll_interval * 2**failures)
                waits = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._nudge.wait()),
                ]
                try:
                    await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await w
                if self._nudge.is_set() and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.min_pass_interval)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            for task in list(in_flight):
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        log.info("anchoring engine stopped")


__all__ = ["SEALED", "AnchoringEngine", "EngineSettings", "EngineStatus", "describe_error"]
