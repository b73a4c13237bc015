"""Event bus interface shared by the in-process and Redis Streams engines.

Delivery semantics (identical on both engines, so tests run the same everywhere):

- A topic is an append-only stream. A consumer *group* sees every event of the topic once;
  the consumers of one group share the work (each event goes to one of them).
- A delivery stays pending until `ack()`. `nack(reason)` makes it available again after
  `retry_delay` (to any consumer of the group); a delivery neither acked nor nacked (the
  consumer died) is reclaimed by another consumer after `claim_idle_timeout`.
- `Delivery.attempt` counts deliveries of that event to the group (1 the first time). After
  `max_deliveries` failed attempts the event goes to the topic's dead-letter stream instead.
- At-least-once: an event may be delivered again (a crash between handling and ack, a relay
  retry). Consumers dedupe by `Event.id` (see `services.kit.events.dedupe`).
- Order is per topic for a single consumer; consumers sharing a group may interleave.
"""

from __future__ import annotations

import abc
import json
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import uuid4

from services.kit import tracing

__all__ = [
    "BusEpoch",
    "BusOptions",
    "DeadLetter",
    "Delivery",
    "Event",
    "EventBus",
    "Start",
    "Subscription",
]

_TOPIC = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")

Start = Literal["earliest", "latest"]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid4().hex


@dataclass(frozen=True)
class Event:
    """A fact a service announces. `key` orders/partitions (e.g. the learner id); `payload`
    is JSON. Pass `occurred_at=clock.now()` from domain code."""

    topic: str
    key: str
    payload: dict[str, Any]
    id: str = field(default_factory=_new_id)
    occurred_at: datetime = field(default_factory=_now)
    # W3C traceparent of the span that produced the event ("" when tracing is off), so
    # its consumers' spans join the producer's trace (services.kit.tracing).
    traceparent: str = field(default_factory=tracing.current_traceparent, compare=False)

    def __post_init__(self) -> None:
        if not _TOPIC.match(self.topic):
            raise ValueError(f"topic {self.topic!r} must look like '<service>.<event>'")
        if not isinstance(self.key, str) or not self.key:
            raise ValueError("event key must be a non-empty string")
        if not isinstance(self.payload, dict):
            raise TypeError("event payload must be a dict")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        # Fail at the producer, not in a consumer far away.
        self.payload_json()

    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def to_fields(self) -> dict[str, str]:
        """Flat string fields: a Redis stream entry, and the in-process engine's copy."""
        fields = {
            "id": self.id,
            "topic": self.topic,
            "key": self.key,
            "payload": self.payload_json(),
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
        }
        if self.traceparent:
            fields["traceparent"] = self.traceparent
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Event:
        return cls(
            topic=fields["topic"],
            key=fields["key"],
            payload=json.loads(fields["payload"]),
            id=fields["id"],
            occurred_at=datetime.fromisoformat(fields["occurred_at"]),
            traceparent=fields.get("traceparent", ""),
        )


@dataclass(frozen=True)
class DeadLetter:
    """An event a group gave up on, with why."""

    event: Event
    group: str
    attempts: int
    reason: str
    failed_at: datetime

    def to_fields(self) -> dict[str, str]:
        return {
            **self.event.to_fields(),
            "dlq_group": self.group,
            "dlq_attempts": str(self.attempts),
            "dlq_reason": self.reason,
            "dlq_failed_at": self.failed_at.isoformat(),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> DeadLetter:
        return cls(
            event=Event.from_fields(fields),
            group=fields["dlq_group"],
            attempts=int(fields["dlq_attempts"]),
            reason=fields["dlq_reason"],
            failed_at=datetime.fromisoformat(fields["dlq_failed_at"]),
        )


@dataclass(frozen=True)
class BusEpoch:
    """One lifetime of the bus's memory: an id and when it began."""

    id: str
    started_at: datetime


@dataclass(frozen=True)
class BusOptions:
    """Tuning shared by both engines. Times in seconds."""

    max_deliveries: int = 5  # failed deliveries before dead letter
    claim_idle_timeout: float = 30.0  # unacked this long -> another consumer may take it
    retry_delay: float = 1.0  # nack -> redelivered after this
    batch_size: int = 10  # events fetched per read
    maxlen: int = 100_000  # approximate cap of each stream
    block: float = 1.0  # longest wait of one read (Redis); bounds close() latency

    def __post_init__(self) -> None:
        if self.max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        if min(self.claim_idle_timeout, self.retry_delay, self.block) < 0:
            raise ValueError("timeouts must be >= 0")
        if self.batch_size < 1 or self.maxlen < 1:
            raise ValueError("batch_size and maxlen must be >= 1")


class Delivery:
    """One delivery of an event to a consumer. Settle it exactly once: `ack()` when handled,
    `nack(reason)` to retry later. Settling twice is a no-op."""

    __slots__ = ("_settled", "_subscription", "attempt", "event", "message_id", "topic")

    def __init__(
        self, subscription: Subscription, topic: str, message_id: str, event: Event, attempt: int
    ) -> None:
        self._subscription = subscription
        self.topic = topic
        self.message_id = message_id
        self.event = event
        self.attempt = attempt
        self._settled = False

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._ack(self)

    async def nack(self, reason: str = "") -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._nack(self, reason or "nack")

    def __repr__(self) -> str:
        return f"Delivery({self.event.topic} {self.event.id} attempt={self.attempt})"


class Subscription(abc.ABC):
    """Async iterator of deliveries for one consumer of one group; `async with` closes it."""

    def __init__(
        self, topics: Sequence[str], *, group: str, consumer: str, options: BusOptions
    ) -> None:
        if not topics:
            raise ValueError("subscribe to at least one topic")
        for topic in topics:
            if not _TOPIC.match(topic):
                raise ValueError(f"topic {topic!r} must look like '<service>.<event>'")
        for name in (group, consumer):
            if not _NAME.match(name):
                raise ValueError(f"group/consumer name {name!r}: use [A-Za-z0-9_.:@-]")
        self.topics: tuple[str, ...] = tuple(dict.fromkeys(topics))
        self.group = group
        self.consumer = consumer
        self.options = options
        # Events asked for per read (per topic on Redis): a page consumer raises it to its
        # page size (see services.kit.events.dedupe.run_page_consumer).
        self.fetch_size = options.batch_size
        self._buffer: deque[Delivery] = deque()
        self._closed = False
        self._ready = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> Subscription:
        return self

    async def ready(self) -> Subscription:
        """Make sure the group exists (so `start="latest"` counts from now). `async with`
        and the first iteration call it."""
        if not self._ready:
            await self._setup()
            self._ready = True
        return self

    async def __anext__(self) -> Delivery:
        await self.ready()
        while not self._closed:
            if self._buffer:
                return self._buffer.popleft()
            self._buffer.extend(await self._fetch())
        raise StopAsyncIteration

    async def __aenter__(self) -> Subscription:
        return await self.ready()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop iterating. Events fetched but not yet handed out go straight back to the
        group; a delivery handed out and not settled is reclaimed after the idle timeout."""
        if self._closed:
            return
        self._closed = True
        unhanded = list(self._buffer)
        self._buffer.clear()
        await self._release(unhanded)
        await self._on_close()

    def take_buffered(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` deliveries already fetched, without waiting: a consumer that
        handles a page of events at once takes the rest of the page this way after the
        first delivery of the iteration. They are handed out, and must be settled."""
        taken: list[Delivery] = []
        while self._buffer and len(taken) < limit:
            taken.append(self._buffer.popleft())
        return taken

    async def ack_all(self, deliveries: Sequence[Delivery]) -> None:
        """``ack()`` each unsettled delivery, in as few round trips as the engine can."""
        unsettled = [d for d in deliveries if not d._settled]
        for delivery in unsettled:
            delivery._settled = True
        if unsettled:
            await self._ack_many(unsettled)

    async def _ack_many(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await self._ack(delivery)

    async def _nack(self, delivery: Delivery, reason: str) -> None:
        if delivery.attempt >= self.options.max_deliveries:
            await self._dead_letter(delivery, f"{reason} (after {delivery.attempt} deliveries)")
        else:
            await self._retry_later(delivery)

    # -- engine specific --------------------------------------------------------------------

    async def _setup(self) -> None:
        """Create the group on each topic if missing."""
        return None

    @abc.abstractmethod
    async def _fetch(self) -> list[Delivery]:
        """Wait (bounded) for deliveries: reclaimed ones first, then new ones. [] is fine."""

    @abc.abstractmethod
    async def _ack(self, delivery: Delivery) -> None: ...

    @abc.abstractmethod
    async def _retry_later(self, delivery: Delivery) -> None: ...

    @abc.abstractmethod
    async def _dead_letter(self, delivery: Delivery, reason: str) -> None: ...

    @abc.abstractmethod
    async def _release(self, deliveries: list[Delivery]) -> None:
        """Give fetched-but-unhanded deliveries back, claimable now, attempt not counted."""

    async def _on_close(self) -> None:
        return None


@runtime_checkable
class EventBus(Protocol):
    """Publish events to topics; consume them in groups."""

    options: BusOptions

    async def publish(self, event: Event) -> None: ...

    async def publish_many(self, events: Sequence[Event]) -> None:
        """:meth:`publish` each, in order, in one round trip where the engine can. Not
        atomic: after an error any prefix may have gone out (publish again: consumers
        dedupe by event id)."""
        ...

    async def publish_in_epoch(self, events: Sequence[Event], epoch: BusEpoch) -> BusEpoch:
        """:meth:`publish_many` if the bus is still in ``epoch``, checked with the publish
        (one round trip on Redis): returns the bus's epoch now; when it is not ``epoch``
        (the bus lost its memory meanwhile) nothing was published."""
        ...

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        group: str,
        consumer: str,
        start: Start = "earliest",
    ) -> Subscription:
        """A subscription for `consumer` in `group`. A group created now starts at the
        oldest retained event (`earliest`) or only sees events published from now on
        (`latest`); an existing group continues where it is."""
        ...

    async def dead_letters(self, topic: str, *, limit: int = 100) -> list[DeadLetter]:
        """Oldest first."""
        ...

    async def pending_count(self, topic: str, group: str) -> int:
        """Deliveries of `topic` to `group` not acknowledged yet."""
        ...

    async def groups(self, topic: str) -> list[str]:
        """Names of the consumer groups of `topic`, sorted."""
        ...

    async def delete_group(self, topic: str, group: str) -> None:
        """Drop `group` from `topic` with its pending entries (no-op if it is missing).
        For groups that only one process ever reads, such as a fan-out's."""
        ...

    async def epoch(self) -> BusEpoch:
        """What the bus holds now is this epoch's: a new one starts when the bus lost its
        memory (a Redis restarted without persistence, or flushed). Outbox relays then
        publish again what they had sent to the lost epoch (see OutboxRelay)."""
        ...

    async def close(self) -> None: ...
