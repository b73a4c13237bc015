"""EventFanout: one bus subscription per process, filtered fan-out to watchers."""

from __future__ import annotations

import asyncio

import pytest

from services.kit.events import Event, EventBus
from services.kit.events.fanout import EventFanout, WatcherOverflow


async def next_event(events, timeout: float = 10) -> Event:  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(anext(events), timeout)


async def test_each_watcher_sees_only_what_its_predicate_allows(event_bus: EventBus) -> None:
    fanout = EventFanout(event_bus, name="test")
    try:
        async with (
            fanout.listen(["learning.recorded"], lambda e: e.key == "ana") as ana,
            fanout.listen(["learning.recorded"], lambda e: e.key == "ben") as ben,
        ):
            for key in ("ben", "ana", "ana"):
                await event_bus.publish(Event("learning.recorded", key=key, payload={"k": key}))
            assert [(await next_event(ana)).key for _ in range(2)] == ["ana", "ana"]
            assert (await next_event(ben)).key == "ben"
    finally:
        await fanout.close()


async def test_two_processes_each_see_every_event(event_bus: EventBus) -> None:
    first, second = EventFanout(event_bus, name="a"), EventFanout(event_bus, name="a")
    try:
        async with (
            first.listen(["passport.updated"], lambda e: True) as one,
            second.listen(["passport.updated"], lambda e: True) as two,
        ):
            await event_bus.publish(Event("passport.updated", key="p1", payload={}))
            assert (await next_event(one)).key == (await next_event(two)).key == "p1"
            groups = await event_bus.groups("passport.updated")
            assert len(groups) == 2 and all(g.startswith("watch.a.") for g in groups)
    finally:
        await first.close()
        await second.close()
    # each process's group goes with it instead of piling up on the bus
    assert await event_bus.groups("passport.updated") == []


async def test_a_watcher_that_falls_behind_is_cut_off(event_bus: EventBus) -> None:
    fanout = EventFanout(event_bus, name="slow", queue_size=3)
    dispatched = 0
    all_dispatched = asyncio.Event()

    def accept(event: Event) -> bool:
        # The pump enqueues right after the predicate, with no await in between. The third
        # event finds the queue (3, one slot kept for the end marker) full: overflow, and
        # the pump stops asking this watcher.
        nonlocal dispatched
        dispatched += 1
        if dispatched == 3:
            all_dispatched.set()
        return True

    try:
        async with fanout.listen(["market.booked"], accept) as events:
            for i in range(6):
                await event_bus.publish(Event("market.booked", key=str(i), payload={}))
            await asyncio.wait_for(all_dispatched.wait(), 10)
            received = []
            with pytest.raises(WatcherOverflow):
                while True:
                    received.append((await next_event(events)).key)
            assert received == ["0", "1"]
    finally:
        await fanout.close()


async def test_an_event_published_again_reaches_a_watcher_once(event_bus: EventBus) -> None:
    """An outbox relay publishes an event again (same id) after the bus lost its memory:
    a live watcher that already had it does not get it twice."""
    fanout = EventFanout(event_bus, name="test")
    try:
        async with fanout.listen(["passport.updated"], lambda e: True) as events:
            first = Event("passport.updated", key="p1", payload={"n": 1})
            await event_bus.publish(first)
            await event_bus.publish(first)  # the same event again
            second = Event("passport.updated", key="p1", payload={"n": 2})
            await event_bus.publish(second)
            assert (await next_event(events)).id == first.id
            assert (await next_event(events)).id == second.id
    finally:
        await fanout.close()
