"""Outbox + relay + idempotent consumer on the engines of the current pass."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit import tracing
from services.kit.clock import FixedClock
from services.kit.db import NAMING_CONVENTION, Database
from services.kit.events import Event, EventBus, Subscription
from services.kit.events.base import BusEpoch
from services.kit.events.dedupe import (
    Deduplicator,
    handle_once,
    handle_page_once,
    processed_events_table,
    run_consumer,
    run_page_consumer,
)
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay, enqueue, outbox_table

TOPIC = "orders.order_placed"
GUARD_S = 15.0

# Producer service "orders": its state and its outbox share one schema.
orders_md = MetaData(schema="orders", naming_convention=NAMING_CONVENTION)
orders = Table(
    "orders",
    orders_md,
    Column("id", String(40), primary_key=True),
    Column("amount", Integer, nullable=False),
)
orders_outbox = outbox_table(orders_md)

# Consumer service "billing": its state and its dedupe markers.
billing_md = MetaData(schema="billing", naming_convention=NAMING_CONVENTION)
totals = Table(
    "totals",
    billing_md,
    Column("id", Integer, primary_key=True),
    Column("amount", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
)
processed = processed_events_table(billing_md)

pytestmark = pytest.mark.schemas("orders", "billing")


@pytest.fixture
async def db(database: Database) -> Database:
    await database.create_all(orders_md, billing_md)
    async with database.transaction() as s:
        await s.execute(insert(totals).values(id=1, amount=0, orders=0))
    return database


async def place_order(db: Database, order_id: str, amount: int, *, fail: bool = False) -> Event:
    """The producer's use case: state change and event in one transaction."""
    event = Event(TOPIC, key=order_id, payload={"order_id": order_id, "amount": amount})
    async with db.transaction() as s:
        await s.execute(insert(orders).values(id=order_id, amount=amount))
        await enqueue(s, orders_outbox, event)
        if fail:
            raise RuntimeError("payment declined")
    return event


async def add_to_total(session: AsyncSession, event: Event) -> None:
    """The consumer's state change: not idempotent by itself."""
    await session.execute(
        update(totals).values(
            amount=totals.c.amount + event.payload["amount"], orders=totals.c.orders + 1
        )
    )


async def received(sub: Subscription, bus: EventBus, count: int) -> list[Event]:
    """The next `count` events, then proof that nothing else is queued: a sentinel published
    now must be the very next delivery."""
    events = []
    for _ in range(count):
        delivery = await asyncio.wait_for(anext(sub), GUARD_S)
        events.append(delivery.event)
        await delivery.ack()
    sentinel = Event(TOPIC, key="sentinel", payload={})
    await bus.publish(sentinel)
    after = await asyncio.wait_for(anext(sub), GUARD_S)
    await after.ack()
    assert after.event.id == sentinel.id, f"unexpected extra event {after.event}"
    return events


async def test_rolled_back_transaction_publishes_nothing(db: Database, event_bus: EventBus) -> None:
    relay = OutboxRelay(db, orders_outbox, event_bus)
    with pytest.raises(RuntimeError, match="declined"):
        await place_order(db, "o-1", 10, fail=True)

    assert await relay.relay_once() == 0
    async with db.session() as s:
        assert (await s.execute(select(orders))).all() == []
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        assert await received(sub, event_bus, 0) == []


async def test_committed_transaction_publishes_exactly_once_in_order(
    db: Database, event_bus: EventBus
) -> None:
    relay = OutboxRelay(db, orders_outbox, event_bus, batch_size=2)
    placed = [await place_order(db, f"o-{i}", i) for i in range(5)]

    assert [await relay.relay_once() for _ in range(4)] == [2, 2, 1, 0]
    assert await relay.pending() == 0
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        assert await received(sub, event_bus, 5) == placed


async def test_relay_crash_after_publish_republishes_and_consumer_dedupes(
    db: Database, event_bus: EventBus, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = OutboxRelay(db, orders_outbox, event_bus, clock=clock)
    event = await place_order(db, "o-1", 25)

    publish = event_bus.publish_in_epoch

    async def crash(events: list[Event], epoch: BusEpoch) -> BusEpoch:
        await publish(events, epoch)
        raise ConnectionError("relay lost its database after publishing")

    with monkeypatch.context() as patch:
        patch.setattr(event_bus, "publish_in_epoch", crash)
        with pytest.raises(ConnectionError):
            await relay.relay_once()
    assert await relay.pending() == 1  # not marked: the next pass publishes it again
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0

    dedupe = Deduplicator(processed, group="billing", clock=clock)
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        copies = await received(sub, event_bus, 2)
    assert copies == [event, event]  # at-least-once: the same event, same id, twice
    assert [await handle_once(db, dedupe, e, add_to_total) for e in copies] == [True, False]
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount, totals.c.orders))).one() == (25, 1)


async def test_failing_handler_rolls_back_its_marker_so_the_retry_runs(
    db: Database, clock: FixedClock
) -> None:
    dedupe = Deduplicator(processed, group="billing", clock=clock)
    event = Event(TOPIC, key="o-1", payload={"order_id": "o-1", "amount": 5})

    async def broken(session: AsyncSession, ev: Event) -> None:
        await add_to_total(session, ev)
        raise RuntimeError("crash mid-handler")

    with pytest.raises(RuntimeError):
        await handle_once(db, dedupe, event, broken)
    assert await handle_once(db, dedupe, event, add_to_total) is True
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount))).scalar_one() == 5

    async with db.transaction() as s:
        assert await dedupe.purge(s, clock.now() + timedelta(seconds=1)) == 1


async def test_concurrent_relays_publish_each_event_once(db: Database, event_bus: EventBus) -> None:
    placed = [await place_order(db, f"o-{i}", i) for i in range(30)]
    relays = [OutboxRelay(db, orders_outbox, event_bus, batch_size=4) for _ in range(3)]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while sent := await relay.relay_once():
            total += sent
        return total

    counts = await asyncio.gather(*(drain(r) for r in relays))
    assert sum(counts) == 30
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        got = await received(sub, event_bus, 30)
    assert sorted(e.id for e in got) == sorted(e.id for e in placed)


async def test_run_relays_until_stopped_and_consumer_applies_once(
    db: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    relay = OutboxRelay(db, orders_outbox, event_bus, poll_interval=0.01)
    dedupe = Deduplicator(processed, group="billing", clock=clock)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    applied = asyncio.Queue[Event]()

    async def on_event(event: Event) -> None:
        if await handle_once(db, dedupe, event, add_to_total):
            applied.put_nowait(event)

    sub = event_bus.subscribe([TOPIC], group="billing", consumer="c")
    consumer_task = asyncio.create_task(run_consumer(sub, on_event))
    try:
        await place_order(db, "o-1", 7)
        await place_order(db, "o-2", 8)
        got = [await asyncio.wait_for(applied.get(), GUARD_S) for _ in range(2)]
        assert [e.key for e in got] == ["o-1", "o-2"]
    finally:
        stop.set()
        await asyncio.wait_for(relay_task, GUARD_S)
        await sub.close()
        await asyncio.wait_for(consumer_task, GUARD_S)
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount, totals.c.orders))).one() == (15, 2)


async def test_consumer_handler_errors_are_nacked_and_retried(event_bus_url: str) -> None:
    from services.kit.events import event_bus_from_url

    bus = event_bus_from_url(event_bus_url, retry_delay=0.01)
    calls: list[int] = []
    done = asyncio.Event()

    async def flaky(event: Event) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("downstream down")
        done.set()

    try:
        await bus.publish(Event(TOPIC, key="o-1", payload={}))
        sub = bus.subscribe([TOPIC], group="billing", consumer="c")
        task = asyncio.create_task(run_consumer(sub, flaky))
        await asyncio.wait_for(done.wait(), GUARD_S)
        await sub.close()
        await asyncio.wait_for(task, GUARD_S)
        assert len(calls) == 3
        assert await bus.pending_count(TOPIC, "billing") == 0
    finally:
        await bus.close()


async def test_purge_published_keeps_unpublished_rows(
    db: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    relay = OutboxRelay(db, orders_outbox, event_bus, clock=clock)
    await place_order(db, "o-1", 1)
    await relay.relay_once()
    await place_order(db, "o-2", 2)

    assert await relay.purge_published(clock.now() + timedelta(seconds=1)) == 1
    assert await relay.pending() == 1
    async with db.session() as s:
        keys = (await s.execute(select(orders_outbox.c.key))).scalars().all()
    assert keys == ["o-2"]


async def test_the_running_relay_purges_rows_published_before_the_retention(
    db: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    relay = OutboxRelay(
        db, orders_outbox, event_bus, clock=clock, retention=timedelta(days=7), poll_interval=0.01
    )
    await place_order(db, "o-old", 1)
    await relay.relay_once()  # published at clock.now()
    clock.advance(timedelta(days=7, seconds=1))
    await place_order(db, "o-new", 2)
    await relay.relay_once()  # published a week later: within the retention
    await place_order(db, "o-unpublished", 3)

    async def keys() -> list[str]:
        async with db.session() as s:
            return list((await s.execute(select(orders_outbox.c.key))).scalars().all())

    stop = asyncio.Event()
    relay.relay_once = _never_relays  # type: ignore[method-assign]  # isolate the purge
    task = asyncio.create_task(relay.run(stop))
    try:
        for _ in range(500):  # a ceiling, not a timing assertion
            if await keys() == ["o-new", "o-unpublished"]:
                break
            await asyncio.sleep(0.01)
        assert await keys() == ["o-new", "o-unpublished"]
    finally:
        stop.set()
        await task


async def _never_relays() -> int:
    return 0


def test_outbox_event_times_are_utc() -> None:
    event = Event(
        TOPIC,
        key="k",
        payload={},
        occurred_at=datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone(),
    )
    assert event.to_fields()["occurred_at"].endswith("+00:00")


async def test_notify_relays_without_waiting_for_the_poll(
    db: Database, event_bus: EventBus
) -> None:
    # A poll interval far longer than the guard: only notify() can get the event out in time.
    relay = OutboxRelay(db, orders_outbox, event_bus, poll_interval=3600)
    stop = asyncio.Event()
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        relay_task = asyncio.create_task(relay.run(stop))
        try:
            for order in ("o-1", "o-2"):
                event = await place_order(db, order, 1)
                relay.notify()
                delivery = await asyncio.wait_for(anext(sub), GUARD_S)
                assert delivery.event == event
                await delivery.ack()
        finally:
            stop.set()
            await asyncio.wait_for(relay_task, GUARD_S)


async def test_an_idle_relay_backs_off_and_a_nudge_resets_it(
    db: Database, event_bus: EventBus
) -> None:
    """Polls that find nothing double the wait up to idle_poll_interval (an idle platform
    must not spin); publishing or a notify() brings it back to poll_interval."""
    relay = OutboxRelay(db, orders_outbox, event_bus, poll_interval=0.2, idle_poll_interval=2.0)
    stop = asyncio.Event()
    delays: list[float] = []

    async def record(_stop: asyncio.Event, delay: float) -> None:
        delays.append(delay)
        if len(delays) == 6:
            await place_order(db, "o-idle", 1)  # something to publish on the next poll
        if len(delays) == 8:
            stop.set()

    relay._sleep = record  # type: ignore[method-assign,assignment]
    await asyncio.wait_for(relay.run(stop), 30)
    assert delays == [0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 0.2, 0.4]


async def _lose_bus_memory(bus: EventBus, url: str) -> None:
    """What a Redis restarted without persistence does: every stream, group and key gone."""
    from services.kit.events.memory import MemoryEventBus
    from services.kit.testing import _delete_bus_keys

    if isinstance(bus, MemoryEventBus):  # the in-process broker, emptied the same way
        bus._broker.streams.clear()
        bus._broker.epoch = BusEpoch(uuid.uuid4().hex, datetime.now(UTC))
    else:
        await _delete_bus_keys(url)


async def test_a_bus_that_lost_its_memory_gets_the_recent_events_again_once(
    db: Database, event_bus: EventBus, event_bus_url: str
) -> None:
    """Redis restarted empty: what the relays had published to it shortly before goes out
    again, once, however many relays (replicas) notice; older rows and rows published to
    the new epoch are left alone."""
    relay, other_replica = (OutboxRelay(db, orders_outbox, event_bus) for _ in range(2))
    old = await place_order(db, "o-old", 1)
    assert await relay.relay_once() == 1
    async with db.transaction() as s:  # published long before the loss: not replayed
        await s.execute(
            update(orders_outbox)
            .where(orders_outbox.c.event_id == old.id)
            .values(published_at=datetime.now(UTC) - timedelta(hours=1))
        )
    recent = [await place_order(db, f"o-{i}", i) for i in range(3)]
    assert await relay.relay_once() == 3
    assert await other_replica.relay_once() == 0  # it knows the epoch too

    await _lose_bus_memory(event_bus, event_bus_url)
    new = await place_order(db, "o-new", 9)
    assert await relay.relay_once() == 4  # the 3 recent ones again, and the new one
    assert await other_replica.relay_once() == 0  # nothing twice
    assert await relay.pending() == 0
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        assert await received(sub, event_bus, 4) == [*recent, new]


async def test_an_idle_relay_notices_a_bus_that_lost_its_memory(
    db: Database, event_bus: EventBus, event_bus_url: str
) -> None:
    """With nothing new to publish, a pass still checks the bus's epoch: what went to the
    lost bus shortly before goes out again, in order."""
    relay = OutboxRelay(db, orders_outbox, event_bus)
    recent = [await place_order(db, f"o-{i}", i) for i in range(3)]
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    await _lose_bus_memory(event_bus, event_bus_url)
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    async with event_bus.subscribe([TOPIC], group="billing", consumer="c") as sub:
        assert await received(sub, event_bus, 3) == recent


async def test_publishing_and_fanning_out_are_spans_of_the_events_trace(
    db: Database, event_bus: EventBus
) -> None:
    """With tracing on, the relay's publish and a fan-out's hand-out of an event are
    spans under the span that produced it (where an event's time goes, hop by hop)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    fanout = EventFanout(event_bus, name="traced")
    try:
        async with fanout.listen([TOPIC], lambda e: True) as events:
            with tracing.span("place order"):
                await place_order(db, "o-traced", 5)
            await OutboxRelay(db, orders_outbox, event_bus).relay_once()
            assert (await asyncio.wait_for(anext(events), GUARD_S)).key == "o-traced"
    finally:
        await fanout.close()
        tracing.uninstall()
    by_name = {span.name: span for span in exporter.get_finished_spans()}
    produced = by_name["place order"].context
    for name in (f"{TOPIC} publish", f"{TOPIC} fan-out"):
        span = by_name[name]
        assert span.parent is not None and span.parent.span_id == produced.span_id, name
        assert span.context.trace_id == produced.trace_id


async def test_a_page_is_handled_once_in_one_transaction(db: Database, clock: FixedClock) -> None:
    """handle_page_once: markers for the whole page in one INSERT; events handled before
    (and repeats within the page) are skipped; a failure rolls back the page's markers."""
    dedupe = Deduplicator(processed, group="billing", clock=clock)
    events = [Event(TOPIC, key=f"o-{n}", payload={"amount": n}) for n in (1, 2, 4)]
    assert await handle_once(db, dedupe, events[0], add_to_total) is True

    async def broken(session: AsyncSession, event: Event) -> None:
        await add_to_total(session, event)
        if event.payload["amount"] == 4:
            raise RuntimeError("crash on the last event of the page")

    with pytest.raises(RuntimeError):
        await handle_page_once(db, dedupe, events, broken)
    handled = await handle_page_once(db, dedupe, [*events, events[1]], add_to_total)
    assert handled == events[1:]
    assert await handle_page_once(db, dedupe, events, add_to_total) == []
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount, totals.c.orders))).one() == (7, 3)


async def test_a_page_consumer_applies_fetched_pages_and_isolates_a_bad_event(
    db: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    """run_page_consumer: events fetched together go to the page handler at once; when a
    page fails, its events are handled one by one, and only the bad one is retried (then
    dead-lettered) while the others are applied once."""
    dedupe = Deduplicator(processed, group="billing", clock=clock)
    pages: list[int] = []

    async def apply(session: AsyncSession, event: Event) -> None:
        if event.payload["amount"] < 0:
            raise ValueError("a negative amount")
        await add_to_total(session, event)

    async def on_page(events: list[Event]) -> None:
        pages.append(len(events))
        await handle_page_once(db, dedupe, events, apply)

    async def on_event(event: Event) -> None:
        await handle_once(db, dedupe, event, apply)

    for amount in (1, 2, -1, 4, 8):
        await event_bus.publish(Event(TOPIC, key="o", payload={"amount": amount}))
    sub = event_bus.subscribe([TOPIC], group="billing", consumer="c")
    consuming = asyncio.create_task(run_page_consumer(sub, on_page, on_event))

    async def settled() -> bool:
        async with db.session() as s:
            done = (await s.execute(select(totals.c.amount))).scalar_one() == 15
        return done and await event_bus.pending_count(TOPIC, "billing") == 0

    async with asyncio.timeout(GUARD_S):
        while not await settled():  # noqa: ASYNC110 (database and bus state: polled)
            await asyncio.sleep(0.02)
    await sub.close()
    await asyncio.wait_for(consuming, GUARD_S)
    assert max(pages) > 1  # at least one page of several events
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount, totals.c.orders))).one() == (15, 4)
    assert [letter.event.payload["amount"] for letter in await event_bus.dead_letters(TOPIC)] == [
        -1
    ]


async def test_a_page_consumer_reads_pages_of_its_page_size(
    db: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    """A page consumer asks the bus for a page's worth of events per read, not the bus's
    default read size (ten): a backlog of 60 goes in pages of 50 and 10."""
    assert event_bus.options.batch_size < 50
    dedupe = Deduplicator(processed, group="billing", clock=clock)
    pages: list[int] = []

    async def on_page(events: list[Event]) -> None:
        pages.append(len(events))
        await handle_page_once(db, dedupe, events, add_to_total)

    async def on_event(event: Event) -> None:
        pages.append(1)
        await handle_once(db, dedupe, event, add_to_total)

    await event_bus.publish_many([Event(TOPIC, key="o", payload={"amount": 1}) for _ in range(60)])
    sub = event_bus.subscribe([TOPIC], group="billing", consumer="c")
    consuming = asyncio.create_task(run_page_consumer(sub, on_page, on_event, page_size=50))
    async with asyncio.timeout(GUARD_S):
        while sum(pages) < 60:  # noqa: ASYNC110 (the consumer's progress: polled)
            await asyncio.sleep(0.02)
    await sub.close()
    await asyncio.wait_for(consuming, GUARD_S)
    assert pages == [50, 10]
    assert await event_bus.pending_count(TOPIC, "billing") == 0
    async with db.session() as s:
        assert (await s.execute(select(totals.c.amount, totals.c.orders))).one() == (60, 60)
