"""Event bus behaviour, identical on the in-process engine and on Redis Streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kit.events import (
    BusOptions,
    Delivery,
    Event,
    EventBus,
    Subscription,
    event_bus_from_url,
)
from services.kit.events.base import BusEpoch
from services.kit.events.memory import MemoryEventBus, discard_broker

TOPIC = "learning.interaction_recorded"
OTHER = "identity.user_registered"
# Guards against a hang only; no test asserts on elapsed time.
GUARD_S = 15.0


def _event(n: int, topic: str = TOPIC) -> Event:
    return Event(topic=topic, key=f"learner-{n % 3}", payload={"n": n, "score": 0.8})


async def _next(sub: Subscription) -> Delivery:
    return await asyncio.wait_for(anext(sub), GUARD_S)


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(GUARD_S):
        # Polls broker/Redis state: there is no notification to wait on.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@asynccontextmanager
async def _bus(url: str, **opts: Any) -> AsyncIterator[EventBus]:
    bus = event_bus_from_url(url, **opts)
    try:
        yield bus
    finally:
        await bus.close()


async def test_published_event_arrives_intact(event_bus: EventBus) -> None:
    sent = Event(
        topic=TOPIC,
        key="learner-1",
        payload={"statement": {"verb": "answered", "score": 0.8}, "tags": ["a", "b"]},
        occurred_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    )
    await event_bus.publish(sent)
    async with event_bus.subscribe([TOPIC], group="passport", consumer="c1") as sub:
        delivery = await _next(sub)
        assert delivery.event == sent
        assert delivery.attempt == 1
        await delivery.ack()
    assert await event_bus.pending_count(TOPIC, "passport") == 0


async def test_each_group_gets_every_event(event_bus: EventBus) -> None:
    sent = [_event(i) for i in range(5)]
    for event in sent:
        await event_bus.publish(event)
    for group in ("passport", "reputation"):
        async with event_bus.subscribe([TOPIC], group=group, consumer="c1") as sub:
            got = []
            for _ in sent:
                delivery = await _next(sub)
                got.append(delivery.event.id)
                await delivery.ack()
        assert got == [e.id for e in sent]


async def test_a_deleted_group_is_gone_and_starts_over_if_used_again(
    event_bus: EventBus,
) -> None:
    assert await event_bus.groups(TOPIC) == []  # no stream yet: no groups, no error
    first = _event(1)
    await event_bus.publish(first)
    for group in ("reputation", "passport"):
        async with event_bus.subscribe([TOPIC], group=group, consumer="c1") as sub:
            await (await _next(sub)).ack()
    assert await event_bus.groups(TOPIC) == ["passport", "reputation"]
    await event_bus.delete_group(TOPIC, "passport")
    await event_bus.delete_group(TOPIC, "passport")  # twice: harmless
    await event_bus.delete_group("identity.nothing_here", "passport")  # no stream: harmless
    assert await event_bus.groups(TOPIC) == ["reputation"]
    # a group created again under the same name reads from the start again
    async with event_bus.subscribe([TOPIC], group="passport", consumer="c1") as sub:
        assert (await _next(sub)).event.id == first.id


async def test_one_subscription_reads_several_topics(event_bus: EventBus) -> None:
    await event_bus.publish(_event(1, TOPIC))
    await event_bus.publish(_event(2, OTHER))
    async with event_bus.subscribe([TOPIC, OTHER], group="gateway", consumer="c1") as sub:
        topics = set()
        for _ in range(2):
            delivery = await _next(sub)
            topics.add(delivery.event.topic)
            await delivery.ack()
    assert topics == {TOPIC, OTHER}


async def test_consumers_of_one_group_share_the_work(event_bus_url: str) -> None:
    async with _bus(event_bus_url, batch_size=1) as bus:
        sent = [_event(i) for i in range(12)]
        for event in sent:
            await bus.publish(event)
        a = bus.subscribe([TOPIC], group="passport", consumer="a")
        b = bus.subscribe([TOPIC], group="passport", consumer="b")
        async with a, b:
            # While a holds its delivery unacknowledged, b gets a different one.
            first_a = await _next(a)
            first_b = await _next(b)
            assert first_a.event.id != first_b.event.id
            await first_a.ack()
            await first_b.ack()
            seen = [first_a.event.id, first_b.event.id]
            while len(seen) < len(sent):
                for sub in (a, b):
                    if len(seen) < len(sent):
                        delivery = await _next(sub)
                        seen.append(delivery.event.id)
                        await delivery.ack()
        assert sorted(seen) == sorted(e.id for e in sent)  # each exactly once
        assert await bus.pending_count(TOPIC, "passport") == 0


async def test_nack_redelivers_then_dead_letters_after_max_deliveries(event_bus_url: str) -> None:
    async with _bus(event_bus_url, max_deliveries=3, retry_delay=0.05) as bus:
        poison = _event(7)
        await bus.publish(poison)
        async with bus.subscribe([TOPIC], group="passport", consumer="c1") as sub:
            attempts = []
            for _ in range(3):
                delivery = await _next(sub)
                assert delivery.event.id == poison.id
                attempts.append(delivery.attempt)
                await delivery.nack("schema mismatch")
        assert attempts == [1, 2, 3]
        assert await bus.pending_count(TOPIC, "passport") == 0
        [letter] = await bus.dead_letters(TOPIC)
        assert letter.event == poison
        assert (letter.group, letter.attempts) == ("passport", 3)
        assert letter.reason.startswith("schema mismatch")


async def test_nacked_event_can_be_retried_by_another_consumer(event_bus_url: str) -> None:
    async with _bus(event_bus_url, retry_delay=0.05) as bus:
        await bus.publish(_event(1))
        a = bus.subscribe([TOPIC], group="passport", consumer="a")
        b = bus.subscribe([TOPIC], group="passport", consumer="b")
        async with a, b:
            await (await _next(a)).nack("downstream unavailable")
            retry = await _next(b)
            assert retry.attempt == 2
            await retry.ack()
        assert await bus.pending_count(TOPIC, "passport") == 0


async def test_delivery_of_a_dead_consumer_is_reclaimed_after_idle_timeout(
    event_bus_url: str,
) -> None:
    async with _bus(event_bus_url, claim_idle_timeout=0.2) as bus:
        sent = _event(1)
        await bus.publish(sent)
        crashed = bus.subscribe([TOPIC], group="passport", consumer="crashed")
        taken = await _next(crashed)  # ... and the process dies: no ack, no nack
        assert taken.attempt == 1

        async with bus.subscribe([TOPIC], group="passport", consumer="survivor") as survivor:
            again = await _next(survivor)
            assert again.event == sent
            assert again.attempt == 2
            await again.ack()
        assert await bus.pending_count(TOPIC, "passport") == 0
        await crashed.close()


async def test_event_that_keeps_killing_consumers_is_dead_lettered(event_bus_url: str) -> None:
    async with _bus(event_bus_url, claim_idle_timeout=0.1, max_deliveries=2) as bus:
        poison = _event(1)
        await bus.publish(poison)
        for name in ("first", "second"):
            victim = bus.subscribe([TOPIC], group="passport", consumer=name)
            assert (await _next(victim)).event.id == poison.id  # then it crashes

        async with bus.subscribe([TOPIC], group="passport", consumer="third") as third:
            reader = asyncio.create_task(anext(third))

            async def buried() -> bool:
                return bool(await bus.dead_letters(TOPIC))

            await _eventually(buried)
            assert not reader.done()  # the poison event was not handed to `third`
            reader.cancel()
        [letter] = await bus.dead_letters(TOPIC)
        assert (letter.event, letter.attempts) == (poison, 2)
        assert "not acknowledged" in letter.reason
        assert await bus.pending_count(TOPIC, "passport") == 0


async def test_closing_returns_fetched_but_unhandled_events_at_once(event_bus_url: str) -> None:
    # Long idle timeout: only the release on close can make them available this soon.
    async with _bus(event_bus_url, batch_size=10, claim_idle_timeout=3600) as bus:
        sent = [_event(i) for i in range(5)]
        for event in sent:
            await bus.publish(event)
        async with bus.subscribe([TOPIC], group="passport", consumer="a") as a:
            first = await _next(a)  # fetches the whole batch, hands out one
            await first.ack()
        async with bus.subscribe([TOPIC], group="passport", consumer="b") as b:
            rest = [await _next(b) for _ in range(4)]
            for delivery in rest:
                await delivery.ack()
        assert [d.attempt for d in rest] == [1, 1, 1, 1]
        assert sorted(d.event.id for d in [first, *rest]) == sorted(e.id for e in sent)


async def test_latest_group_sees_only_new_events(event_bus: EventBus) -> None:
    await event_bus.publish(_event(1))
    async with event_bus.subscribe(
        [TOPIC], group="gateway", consumer="ws-1", start="latest"
    ) as sub:
        fresh = _event(2)
        await event_bus.publish(fresh)
        delivery = await _next(sub)
        assert delivery.event.id == fresh.id
        await delivery.ack()


async def test_settling_twice_is_harmless(event_bus: EventBus) -> None:
    await event_bus.publish(_event(1))
    async with event_bus.subscribe([TOPIC], group="passport", consumer="c1") as sub:
        delivery = await _next(sub)
        await delivery.ack()
        await delivery.ack()
        await delivery.nack("late")
        assert delivery.settled
    assert await event_bus.pending_count(TOPIC, "passport") == 0
    assert await event_bus.dead_letters(TOPIC) == []


async def test_close_ends_iteration_of_a_waiting_consumer(event_bus: EventBus) -> None:
    sub = event_bus.subscribe([TOPIC], group="passport", consumer="c1")
    await sub.ready()
    received: list[Delivery] = []

    async def consume() -> None:
        async for delivery in sub:
            received.append(delivery)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await sub.close()
    await asyncio.wait_for(task, GUARD_S)
    assert received == []


def test_event_validation() -> None:
    with pytest.raises(ValueError, match="service"):
        Event(topic="nodot", key="k", payload={})
    with pytest.raises(ValueError, match="key"):
        Event(topic=TOPIC, key="", payload={})
    with pytest.raises(ValueError, match="timezone"):
        Event(topic=TOPIC, key="k", payload={}, occurred_at=datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        Event(topic=TOPIC, key="k", payload={"when": datetime.now(UTC)})
    with pytest.raises(ValueError):
        Event(topic=TOPIC, key="k", payload={"x": float("nan")})
    first, second = _event(1), _event(1)
    assert first.id != second.id


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    payload=st.dictionaries(st.text(), _json, max_size=5),
    key=st.text(min_size=1),
    when=st.datetimes(timezones=st.just(UTC)),
)
def test_event_survives_the_wire_encoding(
    payload: dict[str, Any], key: str, when: datetime
) -> None:
    event = Event(TOPIC, key=key, payload=payload, occurred_at=when)
    assert Event.from_fields(event.to_fields()) == event


def test_bus_urls_and_options() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        event_bus_from_url("kafka://x")
    with pytest.raises(TypeError, match="unknown"):
        event_bus_from_url("memory://", colour="red")
    with pytest.raises(ValueError):
        BusOptions(max_deliveries=0)
    bus = event_bus_from_url("memory://opts-test", max_deliveries=2)
    assert isinstance(bus, MemoryEventBus) and bus.options.max_deliveries == 2
    discard_broker("opts-test")


async def test_memory_buses_of_one_name_share_a_broker() -> None:
    producer = event_bus_from_url("memory://shared-test")
    consumer = event_bus_from_url("memory://shared-test")
    try:
        await producer.publish(_event(1))
        async with consumer.subscribe([TOPIC], group="g", consumer="c") as sub:
            await (await _next(sub)).ack()
    finally:
        await producer.close()
        await consumer.close()
        discard_broker("shared-test")


async def test_redis_consumer_recovers_when_its_stream_vanishes(event_bus_url: str) -> None:
    if not event_bus_url.startswith("redis"):
        pytest.skip("Redis only: the stream key is deleted behind the bus's back")
    from services.kit.events.redis_streams import RedisEventBus

    async with _bus(event_bus_url, block=0.05) as bus:
        assert isinstance(bus, RedisEventBus)
        async with bus.subscribe([TOPIC], group="passport", consumer="c1") as sub:
            await bus.redis.delete(bus.stream_key(TOPIC))  # e.g. Redis restarted empty
            reader = asyncio.create_task(_next(sub))
            sent = _event(1)
            await bus.publish(sent)
            delivery = await reader
            assert delivery.event == sent
            await delivery.ack()


async def test_a_latest_group_recreated_after_redis_lost_its_memory_misses_nothing(
    event_bus_url: str,
) -> None:
    """Redis restarted empty and a publisher reached it before this consumer did: the
    consumer's `latest` group is recreated at the new stream's start (everything in it
    came after the subscription began), not at its end, which skipped that event for
    good. A group deleted while Redis kept its data still starts from now."""
    if not event_bus_url.startswith("redis"):
        pytest.skip("Redis only: the keys are deleted behind the bus's back")
    from services.kit.events.redis_streams import RedisEventBus
    from services.kit.testing import _delete_bus_keys

    async with _bus(event_bus_url, block=0.05) as bus:
        assert isinstance(bus, RedisEventBus)
        async with bus.subscribe([TOPIC], group="watch", consumer="pump", start="latest") as sub:
            await _delete_bus_keys(event_bus_url)  # every stream, group and the epoch gone
            early = _event(1)
            await bus.publish(early)  # before the consumer reads again
            delivery = await _next(sub)
            assert delivery.event == early
            await delivery.ack()

            await bus.redis.xgroup_destroy(bus.stream_key(TOPIC), "watch")  # same epoch
            reader = asyncio.create_task(_next(sub))

            async def recreated() -> bool:
                return "watch" in await bus.groups(TOPIC)

            await _eventually(recreated)
            later = _event(2)
            await bus.publish(later)
            delivery = await reader
            assert delivery.event == later  # not `early` again
            await delivery.ack()


class _FlakyProxy:
    """A TCP proxy to Redis that can drop every connection and refuse new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down = False
        self.refused = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.refused += 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.down = True
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def test_redis_consumer_reconnects_after_losing_redis(event_bus_url: str) -> None:
    if not event_bus_url.startswith("redis"):
        pytest.skip("Redis only: the connection to Redis is cut")
    from urllib.parse import urlsplit

    from services.kit.events.redis_streams import split_url

    base, prefix = split_url(event_bus_url)
    target = urlsplit(base)
    proxy = _FlakyProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    proxied = f"redis://127.0.0.1:{proxy.port}{target.path}?prefix={prefix}"
    try:
        async with (
            _bus(proxied, block=0.05) as consumer_bus,
            _bus(event_bus_url) as producer,
            consumer_bus.subscribe([TOPIC], group="g", consumer="c") as sub,
        ):
            await producer.publish(_event(1))
            await (await _next(sub)).ack()

            proxy.cut()  # Redis unreachable for the consumer
            reader = asyncio.create_task(_next(sub))
            sent = _event(2)
            await producer.publish(sent)

            async def retried() -> bool:
                return proxy.refused >= 2

            await _eventually(retried)  # the consumer kept trying while Redis was away
            proxy.down = False
            delivery = await reader
            assert delivery.event == sent
            await delivery.ack()
        async with _bus(event_bus_url) as check:
            assert await check.pending_count(TOPIC, "g") == 0
    finally:
        await proxy.close()


async def test_a_concurrent_consumer_handles_several_events_at_once(event_bus: EventBus) -> None:
    """run_consumer(concurrency=n): up to n deliveries are in the handler together, each
    is acked on its own, a failing one is nacked (redelivered) without holding the rest."""
    from services.kit.events.dedupe import run_consumer

    for n in range(6):
        await event_bus.publish(_event(n))
    gate = asyncio.Event()
    inside: set[int] = set()
    most = 0
    handled: list[int] = []

    async def handler(event: Event) -> None:
        nonlocal most
        n = int(event.payload["n"])
        inside.add(n)
        most = max(most, len(inside))
        try:
            if len(inside) == 3:
                gate.set()  # three at once: let everyone through
            await gate.wait()
            if n == 4 and 4 not in handled:
                handled.append(n)
                raise RuntimeError("fails once")
            handled.append(n)
        finally:
            inside.discard(n)

    sub = event_bus.subscribe([TOPIC], group="intake", consumer="c1")
    consuming = asyncio.create_task(run_consumer(sub, handler, concurrency=3))

    async def all_done() -> bool:
        return handled.count(4) == 2 and len(set(handled)) == 6

    await _eventually(all_done)
    await sub.close()
    await asyncio.wait_for(consuming, GUARD_S)
    assert most == 3
    assert await event_bus.pending_count(TOPIC, "intake") == 0


async def test_publish_many_delivers_each_event_in_order(event_bus: EventBus) -> None:
    sent = [_event(n, TOPIC if n % 2 else OTHER) for n in range(6)]
    await event_bus.publish_many(sent)
    await event_bus.publish_many([])
    async with event_bus.subscribe([TOPIC, OTHER], group="many", consumer="c1") as sub:
        got = []
        for _ in sent:
            delivery = await _next(sub)
            got.append(delivery.event)
            await delivery.ack()
    for topic in (TOPIC, OTHER):
        assert [e for e in got if e.topic == topic] == [e for e in sent if e.topic == topic]


async def test_publish_in_epoch_publishes_only_in_that_epoch(event_bus: EventBus) -> None:
    """The outbox relay's publish: in the bus's current epoch the events go out (in
    order); named with another epoch (the bus lost its memory since), none goes out and
    the current epoch comes back."""
    current = await event_bus.epoch()
    sent = [_event(n, TOPIC if n % 2 else OTHER) for n in range(4)]
    assert await event_bus.publish_in_epoch(sent, current) == current
    stale = BusEpoch("an-epoch-gone", datetime(2020, 1, 1, tzinfo=UTC))
    assert await event_bus.publish_in_epoch([_event(9)], stale) == current
    marker = _event(10)
    await event_bus.publish(marker)
    async with event_bus.subscribe([TOPIC, OTHER], group="epoch", consumer="c1") as sub:
        got = []
        for _ in range(len(sent) + 1):
            delivery = await _next(sub)
            got.append(delivery.event)
            await delivery.ack()
    for topic in (TOPIC, OTHER):
        expected = [e for e in [*sent, marker] if e.topic == topic]
        assert [e for e in got if e.topic == topic] == expected  # the stale one never went
