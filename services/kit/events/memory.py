"""In-process event bus: the Redis Streams model (streams, groups, pending entries, claims,
dead letters) kept in memory, so code and tests behave the same on both engines.

Buses built from the same `memory://<name>` URL share one broker in the process (all
services of `keiko serve` see each other's events); `memory://` is the name "default".
Everything runs on the event loop thread: each broker operation is synchronous, hence atomic.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.kit.events.base import (
    BusEpoch,
    BusOptions,
    DeadLetter,
    Delivery,
    Event,
    Start,
    Subscription,
)

__all__ = ["MemoryBroker", "MemoryEventBus", "broker", "discard_broker"]


@dataclass
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float  # monotonic seconds


@dataclass
class _Group:
    cursor: int  # last sequence number handed to the group
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass
class _Stream:
    seqs: list[int] = field(default_factory=list)
    entries: dict[int, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    last_seq: int = 0

    def append(self, fields: dict[str, str], maxlen: int) -> None:
        self.last_seq += 1
        self.seqs.append(self.last_seq)
        self.entries[self.last_seq] = fields
        excess = len(self.seqs) - maxlen
        if excess > 0:
            for seq in self.seqs[:excess]:
                del self.entries[seq]
            del self.seqs[:excess]

    def after(self, cursor: int, limit: int) -> list[int]:
        start = bisect.bisect_right(self.seqs, cursor)
        return self.seqs[start : start + limit]


class MemoryBroker:
    """The shared state behind every in-process bus of one name."""

    def __init__(self) -> None:
        self.streams: dict[str, _Stream] = {}
        self.dead: dict[str, list[dict[str, str]]] = {}
        self.epoch = BusEpoch(uuid.uuid4().hex, datetime.now(UTC))
        self._waiters: set[asyncio.Event] = set()

    def stream(self, topic: str) -> _Stream:
        return self.streams.setdefault(topic, _Stream())

    def wake(self) -> None:
        for waiter in list(self._waiters):
            try:
                waiter.set()
            except RuntimeError:  # its loop is gone (a test that did not close its consumer)
                self._waiters.discard(waiter)

    async def wait(self, timeout: float | None) -> None:
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)


_BROKERS: dict[str, MemoryBroker] = {}


def broker(name: str = "default") -> MemoryBroker:
    """The process-wide broker called `name`."""
    return _BROKERS.setdefault(name, MemoryBroker())


def discard_broker(name: str) -> None:
    """Forget the broker called `name` (tests use one per test)."""
    _BROKERS.pop(name, None)


class MemoryEventBus:
    """`EventBus` on an in-process broker."""

    def __init__(self, name: str = "default", options: BusOptions | None = None) -> None:
        self.name = name
        self.options = options or BusOptions()
        self._broker = broker(name)
        self._subscriptions: set[MemorySubscription] = set()
        self._closed = False

    async def publish(self, event: Event) -> None:
        if self._closed:
            raise RuntimeError("event bus is closed")
        # Store the encoded form: consumers get a fresh copy, exactly as from Redis.
        self._broker.stream(event.topic).append(event.to_fields(), self.options.maxlen)
        self._broker.wake()

    async def publish_many(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.publish(event)

    async def publish_in_epoch(self, events: Sequence[Event], epoch: BusEpoch) -> BusEpoch:
        current = self._broker.epoch
        if current.id == epoch.id:
            await self.publish_many(events)
        return current

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        group: str,
        consumer: str,
        start: Start = "earliest",
    ) -> MemorySubscription:
        if self._closed:
            raise RuntimeError("event bus is closed")
        sub = MemorySubscription(
            self, topics, group=group, consumer=consumer, start=start, options=self.options
        )
        self._subscriptions.add(sub)
        return sub

    async def epoch(self) -> BusEpoch:
        """The broker keeps its streams as long as the process: one epoch."""
        return self._broker.epoch

    async def dead_letters(self, topic: str, *, limit: int = 100) -> list[DeadLetter]:
        return [DeadLetter.from_fields(f) for f in self._broker.dead.get(topic, [])[:limit]]

    async def pending_count(self, topic: str, group: str) -> int:
        grp = self._broker.stream(topic).groups.get(group)
        return len(grp.pending) if grp else 0

    async def groups(self, topic: str) -> list[str]:
        stream = self._broker.streams.get(topic)  # reading must not create the stream
        return sorted(stream.groups) if stream else []

    async def delete_group(self, topic: str, group: str) -> None:
        stream = self._broker.streams.get(topic)
        if stream is not None:
            stream.groups.pop(group, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()

    def _forget(self, sub: MemorySubscription) -> None:
        self._subscriptions.discard(sub)


class MemorySubscription(Subscription):
    def __init__(
        self,
        bus: MemoryEventBus,
        topics: Sequence[str],
        *,
        group: str,
        consumer: str,
        start: Start,
        options: BusOptions,
    ) -> None:
        super().__init__(topics, group=group, consumer=consumer, options=options)
        self._bus = bus
        self._broker = bus._broker
        for topic in self.topics:
            stream = self._broker.stream(topic)
            if group not in stream.groups:
                stream.groups[group] = _Group(cursor=stream.last_seq if start == "latest" else 0)

    def _group(self, topic: str) -> tuple[_Stream, _Group]:
        stream = self._broker.stream(topic)
        # The group may have been created by another subscription; never reset it.
        return stream, stream.groups.setdefault(self.group, _Group(cursor=0))

    async def _fetch(self) -> list[Delivery]:
        opts = self.options
        while not self._closed:
            now = time.monotonic()
            out: list[Delivery] = []
            next_due: float | None = None
            for topic in self.topics:
                stream, group = self._group(topic)
                # 1. Reclaim deliveries idle for too long (consumer died, or nack delay over).
                for seq, pend in list(group.pending.items()):
                    if seq not in stream.entries:  # trimmed away meanwhile
                        del group.pending[seq]
                        continue
                    due = pend.delivered_at + opts.claim_idle_timeout
                    if due > now:
                        next_due = due if next_due is None else min(next_due, due)
                        continue
                    if len(out) >= self.fetch_size:
                        break
                    pend.consumer, pend.deliveries, pend.delivered_at = (
                        self.consumer,
                        pend.deliveries + 1,
                        now,
                    )
                    event = Event.from_fields(stream.entries[seq])
                    if pend.deliveries > opts.max_deliveries:
                        reason = f"not acknowledged after {opts.max_deliveries} deliveries"
                        self._bury(topic, group, seq, event, pend.deliveries - 1, reason)
                        continue
                    out.append(Delivery(self, topic, str(seq), event, pend.deliveries))
                # 2. New events.
                room = self.fetch_size - len(out)
                if room > 0:
                    for seq in stream.after(group.cursor, room):
                        group.cursor = seq
                        group.pending[seq] = _Pending(self.consumer, 1, now)
                        event = Event.from_fields(stream.entries[seq])
                        out.append(Delivery(self, topic, str(seq), event, 1))
            if out:
                return out
            await self._broker.wait(None if next_due is None else max(0.0, next_due - now))
        return []

    def _bury(
        self, topic: str, group: _Group, seq: int, event: Event, attempts: int, reason: str
    ) -> None:
        letter = DeadLetter(event, self.group, attempts, reason, datetime.now(UTC))
        self._broker.dead.setdefault(topic, []).append(letter.to_fields())
        group.pending.pop(seq, None)

    def _pending(self, delivery: Delivery) -> tuple[_Group, int, _Pending | None]:
        _, group = self._group(delivery.topic)
        seq = int(delivery.message_id)
        return group, seq, group.pending.get(seq)

    async def _ack(self, delivery: Delivery) -> None:
        group, seq, _ = self._pending(delivery)
        group.pending.pop(seq, None)

    async def _retry_later(self, delivery: Delivery) -> None:
        _, _, pend = self._pending(delivery)
        if pend is not None:
            # Claimable once retry_delay has passed (the Redis engine does the same trick).
            opts = self.options
            pend.delivered_at = time.monotonic() - max(
                0.0, opts.claim_idle_timeout - opts.retry_delay
            )
            self._broker.wake()

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        group, seq, _ = self._pending(delivery)
        self._bury(delivery.topic, group, seq, delivery.event, delivery.attempt, reason)

    async def _release(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            _, _, pend = self._pending(delivery)
            if pend is not None:
                pend.deliveries -= 1  # it was never handed to anyone
                pend.delivered_at = time.monotonic() - self.options.claim_idle_timeout
        if deliveries:
            self._broker.wake()

    async def _on_close(self) -> None:
        self._bus._forget(self)
        self._broker.wake()  # a task blocked in _fetch sees `closed` and stops
