"""Batch closing, ids, domains, anchor states, backoff and circuit breaker (FixedClock)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from starknet_py.cairo.felt import encode_shortstring
from tenacity import RetryCallState, Retrying, stop_after_attempt

from chain.translator.batching import (
    AnchorState,
    AnchorStatus,
    BackoffPolicy,
    Batcher,
    BatchPolicy,
    BreakerState,
    CircuitBreaker,
    CloseReason,
    Domain,
    InvalidTransition,
    SealedBatch,
    make_batch_id,
    parse_batch_id,
)
from chain.translator.merkle import verify_inclusion
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, Unavailable, ValidationError

MS = timedelta(milliseconds=1)


# -- domains and ids ---------------------------------------------------------------------


@pytest.mark.parametrize("domain", list(Domain))
def test_domain_felts_are_cairo_short_strings(domain: Domain) -> None:
    assert domain.felt == encode_shortstring(domain.value)
    assert Domain.parse(domain.felt) is domain
    assert Domain.parse(domain.value) is domain


def test_domain_parse_rejects_unknown() -> None:
    for bad in ("identity", encode_shortstring("identity"), None, 2**300):
        with pytest.raises(ValidationError):
            Domain.parse(bad)


def test_batch_ids_are_deterministic_ordered_and_decodable() -> None:
    first = make_batch_id(Domain.LEARNING, 1)
    assert first == (encode_shortstring("learning") << 64) | 1
    assert make_batch_id(Domain.LEARNING, 1) == first
    assert make_batch_id(Domain.LEARNING, 2) > first
    assert make_batch_id(Domain.REPUTATION, 1) != first
    assert parse_batch_id(make_batch_id(Domain.MARKETPLACE, 2**64 - 1)) == (
        Domain.MARKETPLACE,
        2**64 - 1,
    )
    assert make_batch_id(Domain.MARKETPLACE, 2**64 - 1) < 2**152
    for bad_seq in (0, -1, 2**64, True):
        with pytest.raises(ValidationError):
            make_batch_id(Domain.LEARNING, bad_seq)
    for bad_id in (0, encode_shortstring("learning") << 64, 12345):
        with pytest.raises(ValidationError):
            parse_batch_id(bad_id)


# -- closing -----------------------------------------------------------------------------


def test_policy_validation() -> None:
    assert BatchPolicy.of(10, 250).max_wait == 250 * MS
    for kwargs in ({"max_leaves": 0}, {"max_wait": timedelta(0)}, {"max_leaves": 2**21}):
        with pytest.raises(ValidationError):
            BatchPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BatchPolicy.of(10, 0)


def test_batch_closes_at_n_leaves() -> None:
    clock = FixedClock()
    batcher: Batcher[str] = Batcher(Domain.LEARNING, BatchPolicy.of(3, 1000), clock)
    assert batcher.add("a") == [] and batcher.add("b") == []
    assert batcher.deadline == clock.now() + 1000 * MS
    (batch,) = batcher.add("c")
    assert batch.items == ("a", "b", "c")
    assert batch.reason is CloseReason.FULL
    assert batch.sequence == 1 and batch.batch_id == make_batch_id(Domain.LEARNING, 1)
    assert batcher.pending_count == 0 and batcher.deadline is None
    assert batcher.next_sequence == 2


def test_batch_closes_t_ms_after_its_first_leaf() -> None:
    clock = FixedClock()
    batcher: Batcher[int] = Batcher(Domain.LEARNING, BatchPolicy.of(100, 500), clock)
    assert batcher.poll() is None  # nothing open
    batcher.add(1)
    opened = clock.now()
    clock.advance(300 * MS)
    batcher.add(2)  # does not extend the deadline
    clock.advance(199 * MS)
    assert batcher.poll() is None
    clock.advance(1 * MS)
    batch = batcher.poll()
    assert batch is not None
    assert batch.items == (1, 2) and batch.reason is CloseReason.TIMEOUT
    assert batch.opened_at == opened and batch.closed_at == opened + 500 * MS
    assert batcher.poll() is None


def test_late_add_closes_the_expired_batch_first() -> None:
    clock = FixedClock()
    batcher: Batcher[int] = Batcher(Domain.REPUTATION, BatchPolicy.of(1, 500), clock)
    (only,) = batcher.add(1)  # N=1 closes immediately
    assert only.reason is CloseReason.FULL

    batcher = Batcher(Domain.REPUTATION, BatchPolicy.of(2, 500), clock, next_sequence=41)
    batcher.add(1)
    clock.advance(600 * MS)
    closed = batcher.add(2)
    assert [b.items for b in closed] == [(1,)]
    assert closed[0].reason is CloseReason.TIMEOUT and closed[0].sequence == 41
    assert batcher.pending_count == 1 and batcher.opened_at == clock.now()
    (full,) = batcher.add(3)
    assert full.items == (2, 3) and full.sequence == 42


def test_flush() -> None:
    clock = FixedClock()
    batcher: Batcher[int] = Batcher(Domain.GOVERNANCE, BatchPolicy.of(5, 500), clock)
    assert batcher.flush() is None
    batcher.add(7)
    batch = batcher.flush()
    assert batch is not None and batch.items == (7,) and batch.reason is CloseReason.FLUSH


def test_sealed_batch_proofs() -> None:
    batch_id = make_batch_id(Domain.LEARNING, 9)
    sealed = SealedBatch.build(batch_id, Domain.LEARNING, [101, 102, 103])
    assert sealed.leaf_count == 3
    for i, proof in enumerate(sealed.proofs):
        assert proof.index == i and proof.root == sealed.root
        assert verify_inclusion(proof.leaf, i, proof.siblings, sealed.root, leaf_count=3)
    with pytest.raises(ValidationError):
        SealedBatch.build(batch_id, Domain.REPUTATION, [1])
    with pytest.raises(ValidationError):
        SealedBatch.build(batch_id, Domain.LEARNING, [])


# -- anchor state machine ----------------------------------------------------------------


def test_anchor_happy_path_and_retry() -> None:
    status = AnchorStatus.pending()
    assert status.state is AnchorState.PENDING and status.attempts == 0
    failed = status.failed("node unreachable")
    assert failed.state is AnchorState.FAILED and failed.reason == "node unreachable"
    assert failed.attempts == 1
    again = failed.retry()
    assert again.state is AnchorState.PENDING and again.attempts == 1
    anchored = again.anchored(block=12, tx_hash=0xABC)
    assert anchored.state is AnchorState.ANCHORED
    assert (anchored.block, anchored.tx_hash, anchored.reason) == (12, 0xABC, None)
    assert AnchorStatus.from_record(anchored.to_record()) == anchored
    assert AnchorStatus.from_record(failed.to_record()) == failed


def test_anchor_invalid_transitions() -> None:
    anchored = AnchorStatus.pending().anchored(1, 2)
    failed = AnchorStatus.pending().failed("x")
    with pytest.raises(InvalidTransition):
        anchored.failed("late")
    with pytest.raises(InvalidTransition):
        anchored.anchored(2, 3)
    with pytest.raises(InvalidTransition):
        anchored.retry()
    with pytest.raises(InvalidTransition):
        AnchorStatus.pending().retry()
    with pytest.raises(InvalidTransition) as err:
        failed.anchored(1, 2)
    assert isinstance(err.value, FailedPrecondition)
    assert err.value.current is AnchorState.FAILED and err.value.target is AnchorState.ANCHORED
    with pytest.raises(InvalidTransition):
        failed.failed("twice")


def test_anchor_bad_values() -> None:
    pending = AnchorStatus.pending()
    for block, tx in ((-1, 1), (1, 0), (1, 2**252), ("1", 1)):
        with pytest.raises(ValidationError):
            pending.anchored(block, tx)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        pending.failed("  ")
    for record in (
        {"state": "anchored"},
        {"state": "pending", "block": 1, "tx_hash": "0x1"},
        {"state": "failed"},
        {"state": "bogus"},
        {},
    ):
        with pytest.raises(ValidationError):
            AnchorStatus.from_record(record)


# -- backoff -----------------------------------------------------------------------------


def test_backoff_ceilings_grow_and_cap() -> None:
    policy = BackoffPolicy(initial=100 * MS, multiplier=2.0, max_delay=1000 * MS, jitter=0.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [
        100 * MS,
        200 * MS,
        400 * MS,
        800 * MS,
        1000 * MS,
        1000 * MS,
    ]
    assert policy.ceiling(10_000) == 1000 * MS
    assert policy.delay(3, random.Random(1)) == 400 * MS


def test_backoff_jitter_is_bounded_and_seeded() -> None:
    policy = BackoffPolicy(initial=100 * MS, max_delay=10_000 * MS, jitter=0.5)
    rng = random.Random(7)
    delays = [policy.delay(4, rng) for _ in range(200)]
    assert all(400 * MS <= d <= 800 * MS for d in delays)
    assert len(set(delays)) > 1
    assert [policy.delay(4, random.Random(7)) for _ in range(1)] == delays[:1]
    clock = FixedClock()
    at = policy.next_attempt_at(1, clock.now(), random.Random(3))
    assert clock.now() + 50 * MS <= at <= clock.now() + 100 * MS


def test_backoff_exhaustion_and_validation() -> None:
    policy = BackoffPolicy(max_attempts=3)
    assert not policy.exhausted(2) and policy.exhausted(3)
    assert not BackoffPolicy().exhausted(10**6)
    for kwargs in (
        {"initial": timedelta(0)},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"max_attempts": 0},
        {"initial": timedelta(seconds=10), "max_delay": timedelta(seconds=1)},
    ):
        with pytest.raises(ValidationError):
            BackoffPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        policy.ceiling(0)


def test_backoff_as_tenacity_wait() -> None:
    policy = BackoffPolicy(initial=100 * MS, max_delay=1000 * MS, jitter=0.0)
    wait = policy.tenacity_wait(random.Random(0))
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = 3
    assert wait(state) == pytest.approx(0.4)

    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    retrying = Retrying(wait=wait, stop=stop_after_attempt(5), sleep=sleeps.append)
    assert retrying(flaky) == "ok"
    assert sleeps == pytest.approx([0.1, 0.2])


# -- circuit breaker ---------------------------------------------------------------------


def test_breaker_opens_after_threshold_and_half_opens_after_timeout() -> None:
    clock = FixedClock()
    moves: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        clock,
        failure_threshold=3,
        reset_timeout=timedelta(seconds=10),
        on_transition=lambda a, b: moves.append((a, b)),
    )
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the consecutive count
    assert breaker.snapshot().consecutive_failures == 0
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    snap = breaker.snapshot()
    assert snap.opened_at == clock.now() and snap.retry_at == clock.now() + timedelta(seconds=10)
    assert not breaker.allow()
    with pytest.raises(Unavailable):
        breaker.before_call()

    clock.advance(timedelta(seconds=9))
    assert breaker.state is BreakerState.OPEN
    clock.advance(timedelta(seconds=1))
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # no second probe while it is in flight
    assert breaker.snapshot().half_open_in_flight == 1
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    assert moves == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_breaker_failed_probe_reopens() -> None:
    clock = FixedClock()
    breaker = CircuitBreaker(clock, failure_threshold=1, reset_timeout=timedelta(seconds=5))
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(timedelta(seconds=5))
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == clock.now() + timedelta(seconds=5)
    clock.advance(timedelta(seconds=4))
    assert not breaker.allow()
    # failures and late successes while open change nothing
    breaker.record_failure()
    breaker.record_success()
    assert breaker.state is BreakerState.OPEN
    clock.advance(timedelta(seconds=1))
    assert breaker.state is BreakerState.HALF_OPEN


def test_breaker_half_open_allows_configured_probes() -> None:
    clock = FixedClock()
    breaker = CircuitBreaker(
        clock, failure_threshold=1, reset_timeout=timedelta(seconds=1), half_open_max_calls=2
    )
    breaker.record_failure()
    clock.advance(timedelta(seconds=1))
    assert breaker.allow() and breaker.allow() and not breaker.allow()


def test_breaker_validation() -> None:
    clock = FixedClock()
    for kwargs in (
        {"failure_threshold": 0},
        {"reset_timeout": timedelta(0)},
        {"half_open_max_calls": 0},
    ):
        with pytest.raises(ValidationError):
            CircuitBreaker(clock, **kwargs)  # type: ignore[arg-type]


def test_shared_sequence_allocator_for_replicas() -> None:
    clock = FixedClock()
    counter = iter(range(7, 100))

    def allocate() -> int:
        return next(counter)

    one: Batcher[str] = Batcher(
        Domain.LEARNING, BatchPolicy.of(1, 500), clock, allocate_sequence=allocate
    )
    two: Batcher[str] = Batcher(
        Domain.LEARNING, BatchPolicy.of(1, 500), clock, allocate_sequence=allocate
    )
    ids = [b.sequence for b in one.add("a") + two.add("b") + one.add("c")]
    assert ids == [7, 8, 9]

    bad: Batcher[str] = Batcher(
        Domain.LEARNING, BatchPolicy.of(1, 500), clock, allocate_sequence=lambda: 0
    )
    with pytest.raises(ValidationError):
        bad.add("x")
