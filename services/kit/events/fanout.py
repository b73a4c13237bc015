"""Fan bus events out to many in-process watchers: the engine behind `Watch*` RPCs.

A process opens one bus subscription per topic (its own group, starting at "latest", so
every replica sees every event) and hands each event to the watchers whose predicate
accepts it. The predicate is where a service authorizes: a watcher only ever sees
events it may see. A watcher that falls `queue_size` events behind is cut off with
`WatcherOverflow` rather than slowing everyone else; its client re-subscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog

from services.kit import tracing
from services.kit.errors import Unavailable
from services.kit.events.base import Event, EventBus, Subscription
from services.kit.tracing import SpanKind

log = structlog.get_logger("keiko.events.fanout")

Predicate = Callable[[Event], bool]


class WatcherOverflow(Unavailable):
    """The watcher did not keep up; the stream ends and the client should resubscribe."""


@dataclass(eq=False)
class _Watcher:
    topics: frozenset[str]
    predicate: Predicate
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue())
    overflowed: bool = False


RECENT_IDS = 10_000


class EventFanout:
    def __init__(self, bus: EventBus, *, name: str, queue_size: int = 256) -> None:
        self._bus = bus
        # One group per process: replicas must not share (and so split) the events.
        self._group = f"watch.{name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._queue_size = queue_size
        self._watchers: set[_Watcher] = set()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def listen(
        self, topics: Sequence[str], predicate: Predicate
    ) -> AsyncIterator[AsyncIterator[Event]]:
        """`async with fanout.listen([...], pred) as events: async for e in events: ...`
        Events published after `listen` is entered are delivered."""
        watcher = _Watcher(frozenset(topics), predicate, asyncio.Queue(self._queue_size))
        for topic in watcher.topics:
            await self._ensure_pump(topic)
        self._watchers.add(watcher)
        try:
            yield self._drain(watcher)
        finally:
            self._watchers.discard(watcher)

    async def _drain(self, watcher: _Watcher) -> AsyncIterator[Event]:
        while True:
            event = await watcher.queue.get()
            if event is None:
                if watcher.overflowed:
                    raise WatcherOverflow("too many events pending: subscribe again")
                return
            yield event

    async def _ensure_pump(self, topic: str) -> None:
        async with self._lock:
            if topic in self._pumps:
                return
            subscription = self._bus.subscribe(
                [topic], group=self._group, consumer="pump", start="latest"
            )
            await subscription.ready()  # the group exists: nothing published from now is missed
            self._subscriptions[topic] = subscription
            pump = asyncio.create_task(self._pump(topic, subscription))
            pump.add_done_callback(self._pump_stopped)
            self._pumps[topic] = pump

    def _pump_stopped(self, task: asyncio.Task[None]) -> None:
        """A pump that dies must not leave watchers waiting forever."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("event pump failed", error=repr(task.exception()))
        for watcher in list(self._watchers):
            watcher.overflowed = True  # ends the stream with Unavailable: resubscribe
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)

    async def _pump(self, topic: str, subscription: Subscription) -> None:
        # Watchers see each event once even when it is delivered again (an outbox relay
        # publishing again after Redis lost its memory, a redelivery): the ids of the
        # latest events are remembered.
        seen: set[str] = set()
        order: deque[str] = deque()
        async for delivery in subscription:
            event = delivery.event
            if event.id in seen:
                await delivery.ack()
                continue
            seen.add(event.id)
            order.append(event.id)
            if len(order) > RECENT_IDS:
                seen.discard(order.popleft())
            with tracing.event_span(
                f"{topic} fan-out", event.traceparent, SpanKind.CONSUMER, topic, "receive"
            ):
                self._hand_out(topic, event)
            await delivery.ack()

    def _hand_out(self, topic: str, event: Event) -> None:
        """Queue ``event`` for every watcher of ``topic`` whose predicate accepts it."""
        for watcher in list(self._watchers):
            if topic not in watcher.topics or watcher.overflowed:
                continue
            try:
                accepted = watcher.predicate(event)
            except Exception:
                log.exception("watch predicate failed", topic=topic)
                accepted = False
            if not accepted:
                continue
            if watcher.queue.qsize() >= self._queue_size - 1:
                watcher.overflowed = True
                watcher.queue.put_nowait(None)
            else:
                watcher.queue.put_nowait(event)

    async def close(self) -> None:
        for watcher in list(self._watchers):
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)
        for subscription in self._subscriptions.values():
            await subscription.close()
        for task in self._pumps.values():
            task.cancel()
        await asyncio.gather(*self._pumps.values(), return_exceptions=True)
        # The group is this process's alone: left behind, it would only pile up on Redis.
        for topic in self._subscriptions:
            try:
                await self._bus.delete_group(topic, self._group)
            except Exception:  # shutting down: a leftover group is harmless
                log.warning("fan-out group not deleted", topic=topic, group=self._group)
        self._pumps.clear()
        self._subscriptions.clear()
