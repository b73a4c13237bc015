"""Batching policy, batch ids, domains, anchor states and retry policy: pure, clock-driven.

Nothing here does I/O. The outbox/servicer (built elsewhere) persists items and states and
asks these objects what to do; every decision depends on a :class:`~services.kit.clock.Clock`
so that tests drive time with ``FixedClock``.

**Close rule.** A batch opens with its first leaf and closes when it holds ``max_leaves``
leaves or when ``max_wait`` has elapsed since its first leaf, whichever comes first. The
time rule is checked by :meth:`Batcher.poll` (call it at :attr:`Batcher.deadline`) and
also on :meth:`Batcher.add`: an item arriving after the deadline first closes the expired
batch and then opens a new one.

**Domains** are Cairo short strings: ``'learning'``, ``'reputation'``, ``'marketplace'``,
``'governance'`` (felt = the ASCII bytes read big-endian, as Cairo does).

**Batch ids** are felts: ``batch_id = domain_felt * 2**64 + sequence`` with ``sequence``
in ``[1, 2**64)`` increasing by one per closed batch of that domain. They are
deterministic, unique across domains, ordered within a domain and decodable
(:func:`parse_batch_id`); the largest (``'marketplace'``, 88 bits) stays below 2**152.

**Anchor states.** ``PENDING -> ANCHORED(block, tx hash)`` or ``PENDING -> FAILED(reason)``;
``FAILED -> PENDING`` on retry. ``ANCHORED`` is final. Anything else raises
:class:`InvalidTransition`.

**Retries.** :class:`BackoffPolicy`: exponential backoff with jitter and an injectable
``random.Random`` (also usable as a tenacity ``wait``). :class:`CircuitBreaker`:
closed / open / half-open, inspectable, driven by the clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from tenacity import RetryCallState
from tenacity.wait import wait_base

from chain.translator.felts import FELT_PRIME, decode_short_string, encode_short_string
from chain.translator.merkle import InclusionProof, MerkleTree
from services.kit.clock import Clock
from services.kit.errors import FailedPrecondition, Unavailable, ValidationError

T = TypeVar("T")

SEQUENCE_BITS = 64
MAX_SEQUENCE = 2**SEQUENCE_BITS - 1


# -- domains and batch ids ---------------------------------------------------------------


class Domain(StrEnum):
    """What a batch anchors; its felt is the Cairo short string of the value."""

    LEARNING = "learning"
    REPUTATION = "reputation"
    MARKETPLACE = "marketplace"
    GOVERNANCE = "governance"

    @property
    def felt(self) -> int:
        return encode_short_string(self.value)

    @classmethod
    def parse(cls, value: object, field: str = "domain") -> Domain:
        """A domain from its name or its felt."""
        if type(value) is int:
            value = decode_short_string(value, field)
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValidationError(field, f"unknown domain {value!r}")


def make_batch_id(domain: Domain, sequence: int) -> int:
    """``domain_felt * 2**64 + sequence`` (see the module docstring)."""
    if not isinstance(domain, Domain):
        raise ValidationError("domain", "must be a Domain")
    if type(sequence) is not int or not 1 <= sequence <= MAX_SEQUENCE:
        raise ValidationError("sequence", f"must be an integer in [1, 2**{SEQUENCE_BITS})")
    batch_id = (domain.felt << SEQUENCE_BITS) | sequence
    assert batch_id < FELT_PRIME
    return batch_id


def parse_batch_id(batch_id: int) -> tuple[Domain, int]:
    """Inverse of :func:`make_batch_id`."""
    if type(batch_id) is not int or not 0 < batch_id < FELT_PRIME:
        raise ValidationError("batch_id", "must be a positive felt")
    sequence = batch_id & MAX_SEQUENCE
    if sequence == 0:
        raise ValidationError("batch_id", "has no sequence number")
    return Domain.parse(batch_id >> SEQUENCE_BITS, "batch_id"), sequence


# -- batch closing -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """Close a batch at ``max_leaves`` leaves or ``max_wait`` after its first leaf."""

    max_leaves: int = 256
    max_wait: timedelta = timedelta(milliseconds=500)

    def __post_init__(self) -> None:
        if type(self.max_leaves) is not int or not 1 <= self.max_leaves <= 2**20:
            raise ValidationError("max_leaves", "must be an integer in [1, 2**20]")
        if not isinstance(self.max_wait, timedelta) or self.max_wait <= timedelta(0):
            raise ValidationError("max_wait", "must be a positive duration")

    @classmethod
    def of(cls, max_leaves: int, max_wait_ms: int) -> BatchPolicy:
        if type(max_wait_ms) is not int or max_wait_ms < 1:
            raise ValidationError("max_wait_ms", "must be a positive integer")
        return cls(max_leaves=max_leaves, max_wait=timedelta(milliseconds=max_wait_ms))


class CloseReason(StrEnum):
    FULL = "full"
    TIMEOUT = "timeout"
    FLUSH = "flush"


@dataclass(frozen=True, slots=True)
class ClosedBatch(Generic[T]):
    """A closed batch: its id and items in leaf order."""

    batch_id: int
    domain: Domain
    sequence: int
    items: tuple[T, ...]
    opened_at: datetime
    closed_at: datetime
    reason: CloseReason


class Batcher(Generic[T]):
    """Accumulates items of one domain into batches by :class:`BatchPolicy`.

    Sequence numbers (and so batch ids) come from ``next_sequence`` upwards, which lets a
    restarted process continue the persisted sequence. When several replicas batch the
    same domain, pass ``allocate_sequence`` instead: a callable backed by one shared
    counter (a database sequence) that returns a fresh, never reused number per batch.
    """

    def __init__(
        self,
        domain: Domain,
        policy: BatchPolicy,
        clock: Clock,
        next_sequence: int = 1,
        *,
        allocate_sequence: Callable[[], int] | None = None,
    ) -> None:
        make_batch_id(domain, next_sequence)  # validates both
        self.domain = domain
        self.policy = policy
        self._clock = clock
        self._next_sequence = next_sequence
        self._allocate = allocate_sequence
        self._items: list[T] = []
        self._opened_at: datetime | None = None

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def pending_count(self) -> int:
        return len(self._items)

    @property
    def opened_at(self) -> datetime | None:
        return self._opened_at

    @property
    def deadline(self) -> datetime | None:
        """When the open batch closes by time (None when no batch is open)."""
        return None if self._opened_at is None else self._opened_at + self.policy.max_wait

    def _close(self, reason: CloseReason, now: datetime) -> ClosedBatch[T]:
        assert self._opened_at is not None
        sequence = self._next_sequence if self._allocate is None else self._allocate()
        batch_id = make_batch_id(self.domain, sequence)  # validates an allocated sequence
        batch = ClosedBatch(
            batch_id=batch_id,
            domain=self.domain,
            sequence=sequence,
            items=tuple(self._items),
            opened_at=self._opened_at,
            closed_at=now,
            reason=reason,
        )
        self._next_sequence = sequence + 1
        self._items = []
        self._opened_at = None
        return batch

    def poll(self) -> ClosedBatch[T] | None:
        """Close the open batch if its deadline has passed."""
        deadline = self.deadline
        now = self._clock.now()
        if deadline is not None and now >= deadline:
            return self._close(CloseReason.TIMEOUT, now)
        return None

    def add(self, item: T) -> list[ClosedBatch[T]]:
        """Add an item; returns the batches this closed (0, 1, or 2 if one had expired)."""
        closed: list[ClosedBatch[T]] = []
        expired = self.poll()
        if expired is not None:
            closed.append(expired)
        now = self._clock.now()
        if self._opened_at is None:
            self._opened_at = now
        self._items.append(item)
        if len(self._items) >= self.policy.max_leaves:
            closed.append(self._close(CloseReason.FULL, now))
        return closed

    def flush(self) -> ClosedBatch[T] | None:
        """Close the open batch now, whatever its size (e.g. on shutdown)."""
        if self._opened_at is None:
            return None
        return self._close(CloseReason.FLUSH, self._clock.now())


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A batch's Merkle commitment: what is anchored, and each leaf's proof."""

    batch_id: int
    domain: Domain
    root: int
    leaf_count: int
    proofs: tuple[InclusionProof, ...]

    @classmethod
    def build(cls, batch_id: int, domain: Domain, leaves: Sequence[int]) -> SealedBatch:
        parsed_domain, _ = parse_batch_id(batch_id)
        if parsed_domain is not domain:
            raise ValidationError("batch_id", "does not belong to the domain")
        tree = MerkleTree(leaves)
        return cls(batch_id, domain, tree.root, tree.leaf_count, tuple(tree.proofs()))


# -- anchor state machine ----------------------------------------------------------------


class AnchorState(StrEnum):
    PENDING = "pending"
    ANCHORED = "anchored"
    FAILED = "failed"


class InvalidTransition(FailedPrecondition):
    def __init__(self, current: AnchorState, target: AnchorState) -> None:
        super().__init__(f"anchor cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


@dataclass(frozen=True, slots=True)
class AnchorStatus:
    """Immutable anchor status; each transition returns a new one."""

    state: AnchorState = AnchorState.PENDING
    attempts: int = 0
    block: int | None = None
    tx_hash: int | None = None
    reason: str | None = None

    @classmethod
    def pending(cls) -> AnchorStatus:
        return cls()

    def _require(self, current: AnchorState, target: AnchorState) -> None:
        if self.state is not current:
            raise InvalidTransition(self.state, target)

    def anchored(self, block: int, tx_hash: int) -> AnchorStatus:
        self._require(AnchorState.PENDING, AnchorState.ANCHORED)
        if type(block) is not int or block < 0:
            raise ValidationError("block", "must be a non-negative integer")
        if type(tx_hash) is not int or not 0 < tx_hash < FELT_PRIME:
            raise ValidationError("tx_hash", "must be a non-zero felt")
        return replace(self, state=AnchorState.ANCHORED, block=block, tx_hash=tx_hash, reason=None)

    def failed(self, reason: str) -> AnchorStatus:
        self._require(AnchorState.PENDING, AnchorState.FAILED)
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "a failure needs a reason")
        return replace(self, state=AnchorState.FAILED, reason=reason, attempts=self.attempts + 1)

    def retry(self) -> AnchorStatus:
        self._require(AnchorState.FAILED, AnchorState.PENDING)
        return replace(self, state=AnchorState.PENDING)

    def to_record(self) -> dict[str, Any]:
        """Plain values for storage (tx hash as 0x hex)."""
        return {
            "state": self.state.value,
            "attempts": self.attempts,
            "block": self.block,
            "tx_hash": None if self.tx_hash is None else hex(self.tx_hash),
            "reason": self.reason,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AnchorStatus:
        try:
            state = AnchorState(record["state"])
            tx = record.get("tx_hash")
            status = cls(
                state=state,
                attempts=int(record.get("attempts", 0)),
                block=record.get("block"),
                tx_hash=None if tx is None else int(tx, 16),
                reason=record.get("reason"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError("anchor_status", f"malformed record: {exc}") from None
        anchored_ok = status.block is not None and status.tx_hash is not None
        if (state is AnchorState.ANCHORED) != anchored_ok:
            raise ValidationError("anchor_status", "block and tx hash go with anchored only")
        if state is AnchorState.FAILED and not status.reason:
            raise ValidationError("anchor_status", "a failed status needs a reason")
        return status


# -- backoff -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with jitter.

    The ceiling of attempt ``n`` (1-based: the wait after the n-th failure) is
    ``min(max_delay, initial * multiplier ** (n - 1))``; the delay is drawn uniformly from
    ``[ceiling * (1 - jitter), ceiling]`` (``jitter=1`` is "full jitter", 0 none).
    ``max_attempts`` (None = unbounded) says when to give up.
    """

    initial: timedelta = timedelta(milliseconds=500)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(seconds=60)
    jitter: float = 0.5
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial <= timedelta(0):
            raise ValidationError("initial", "must be positive")
        if self.max_delay < self.initial:
            raise ValidationError("max_delay", "must be at least the initial delay")
        if not self.multiplier >= 1.0:
            raise ValidationError("multiplier", "must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValidationError("jitter", "must be in [0, 1]")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValidationError("max_attempts", "must be at least 1")

    def _check_attempt(self, attempt: int) -> None:
        if type(attempt) is not int or attempt < 1:
            raise ValidationError("attempt", "must be a positive integer")

    def ceiling(self, attempt: int) -> timedelta:
        self._check_attempt(attempt)
        cap = self.max_delay.total_seconds()
        base = self.initial.total_seconds()
        try:
            value = base * self.multiplier ** (attempt - 1)
        except OverflowError:
            value = cap
        return timedelta(seconds=min(cap, value))

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        ceiling = self.ceiling(attempt).total_seconds()
        low = ceiling * (1.0 - self.jitter)
        return timedelta(seconds=rng.uniform(low, ceiling))

    def next_attempt_at(self, attempt: int, now: datetime, rng: random.Random) -> datetime:
        return now + self.delay(attempt, rng)

    def exhausted(self, attempts: int) -> bool:
        """True once ``attempts`` failures used up ``max_attempts``."""
        return self.max_attempts is not None and attempts >= self.max_attempts

    def tenacity_wait(self, rng: random.Random | None = None) -> wait_base:
        """This policy as a tenacity ``wait=`` strategy."""
        return _TenacityWait(self, rng or random.Random())


class _TenacityWait(wait_base):
    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        return self._policy.delay(max(1, retry_state.attempt_number), self._rng).total_seconds()


# -- circuit breaker ---------------------------------------------------------------------


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    opened_at: datetime | None
    retry_at: datetime | None
    half_open_in_flight: int


@dataclass
class CircuitBreaker:
    """Closed -> (``failure_threshold`` consecutive failures) -> open -> (after
    ``reset_timeout``) -> half-open, which lets ``half_open_max_calls`` probes through:
    a success closes the breaker, a failure opens it again for another ``reset_timeout``.
    """

    clock: Clock
    failure_threshold: int = 5
    reset_timeout: timedelta = timedelta(seconds=30)
    half_open_max_calls: int = 1
    on_transition: Callable[[BreakerState, BreakerState], None] | None = None
    _state: BreakerState = field(default=BreakerState.CLOSED, init=False)
    _failures: int = field(default=0, init=False)
    _opened_at: datetime | None = field(default=None, init=False)
    _in_flight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if type(self.failure_threshold) is not int or self.failure_threshold < 1:
            raise ValidationError("failure_threshold", "must be a positive integer")
        if self.reset_timeout <= timedelta(0):
            raise ValidationError("reset_timeout", "must be positive")
        if type(self.half_open_max_calls) is not int or self.half_open_max_calls < 1:
            raise ValidationError("half_open_max_calls", "must be a positive integer")

    def _move(self, target: BreakerState) -> None:
        previous = self._state
        if previous is target:
            return
        self._state = target
        if target is BreakerState.OPEN:
            self._opened_at = self.clock.now()
        if target is BreakerState.CLOSED:
            self._opened_at = None
            self._failures = 0
        self._in_flight = 0
        if self.on_transition is not None:
            self.on_transition(previous, target)

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose timeout elapsed reads as half-open."""
        if self._state is BreakerState.OPEN:
            assert self._opened_at is not None
            if self.clock.now() >= self._opened_at + self.reset_timeout:
                self._move(BreakerState.HALF_OPEN)
        return self._state

    @property
    def retry_at(self) -> datetime | None:
        """When an open breaker will let a probe through."""
        if self.state is BreakerState.OPEN:
            assert self._opened_at is not None
            return self._opened_at + self.reset_timeout
        return None

    def allow(self) -> bool:
        """May a call go ahead now? (In half-open this reserves a probe slot.)"""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._in_flight < self.half_open_max_calls:
            self._in_flight += 1
            return True
        return False

    def before_call(self) -> None:
        """:meth:`allow`, raising ``Unavailable`` when the breaker refuses."""
        if not self.allow():
            raise Unavailable("chain circuit breaker is open")

    def record_success(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._move(BreakerState.CLOSED)
        elif state is BreakerState.CLOSED:
            self._failures = 0

    def record_failure(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._failures += 1
            self._move(BreakerState.OPEN)
        elif state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._move(BreakerState.OPEN)

    def snapshot(self) -> BreakerSnapshot:
        state = self.state
        return BreakerSnapshot(
            state=state,
            consecutive_failures=self._failures,
            opened_at=self._opened_at,
            retry_at=self.retry_at,
            half_open_in_flight=self._in_flight,
        )
