"""WatchReservations: reservation changes through the outbox, the bus and the fanout, each
watcher seeing only what it may see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time

import grpc

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.testing import RecordingRuntime as Runtime
from services.marketplace.reservations.domain import ReservationInput
from services.marketplace.servicer import build_marketplace_servicer
from services.marketplace.spaces.availability import Availability, WeeklySlot
from services.marketplace.spaces.domain import SpaceInput
from services.marketplace.tests.conftest import Harness, at, expect_code


async def _next(
    stream: AsyncIterator[pb.WatchReservationsResponse],
) -> pb.WatchReservationsResponse:
    return await asyncio.wait_for(anext(stream), timeout=15)


async def test_watchers_see_only_their_reservations(harness: Harness) -> None:
    space = await harness.create_space("owner-1")
    other_space = await harness.create_space("owner-2")

    owner_stream = harness.owner().watch_reservations(
        pb.WatchReservationsRequest(space_id=space.id)
    )
    student_stream = harness.learner("student-1").watch_reservations(pb.WatchReservationsRequest())
    stranger_stream = harness.learner("student-9").watch_reservations(pb.WatchReservationsRequest())
    # Start the three calls, then wait until the server registered all three watchers.
    first = [
        asyncio.ensure_future(_next(s)) for s in (owner_stream, student_stream, stranger_stream)
    ]
    await harness.fanout.wait_for_listeners(3)

    # Not for anybody watching: another owner's space, other people.
    await harness.book(other_space.id, at(10, 9), at(10, 10), tutor="tutor-2", student="student-2")
    mine = await harness.book(space.id, at(10, 10), at(10, 11))

    owner_event, student_event = await first[0], await first[1]
    for event in (owner_event, student_event):
        assert event.kind == pb.ReservationEventKind.REQUESTED
        assert event.reservation.id == mine.id
        assert event.reservation.total_cost.amount_minor == mine.total_cost.amount_minor

    await harness.owner().confirm_reservation(pb.ConfirmReservationRequest(reservation_id=mine.id))
    confirmed = await _next(owner_stream)
    assert (confirmed.kind, confirmed.reservation.status) == (
        pb.ReservationEventKind.CONFIRMED,
        pb.ReservationStatus.CONFIRMED,
    )
    assert (await _next(student_stream)).kind == pb.ReservationEventKind.CONFIRMED

    # The stranger's first event is its own booking: nothing before leaked to it.
    own = await harness.book(space.id, at(11, 10), at(11, 11), tutor="tutor-3", student="student-9")
    stranger_event = await first[2]
    assert stranger_event.reservation.id == own.id

    await harness.learner("student-9").cancel_reservation(
        pb.CancelReservationRequest(reservation_id=own.id)
    )
    cancelled = await _next(stranger_stream)
    assert cancelled.kind == pb.ReservationEventKind.CANCELLED
    assert cancelled.reservation.cancellation.cancelled_by == "student-9"
    for stream in (owner_stream, student_stream, stranger_stream):
        await stream.aclose()  # type: ignore[attr-defined]


async def test_watching_a_space_needs_its_ownership(harness: Harness) -> None:
    space = await harness.create_space("owner-1")

    async def first_of(stub: pb.MarketplaceServiceStub, space_id: str) -> None:
        async for _ in stub.watch_reservations(pb.WatchReservationsRequest(space_id=space_id)):
            break

    await expect_code(
        first_of(harness.owner("owner-2"), space.id),
        grpc.StatusCode.PERMISSION_DENIED,
        "only the space owner may watch its reservations",
    )
    await expect_code(
        first_of(harness.owner("owner-2"), "missing"),
        grpc.StatusCode.NOT_FOUND,
        "space missing not found",
    )
    await expect_code(
        first_of(harness.anonymous(), ""),
        grpc.StatusCode.UNAUTHENTICATED,
        "missing authorization metadata",
    )


async def test_factory_registers_the_outbox_relay_that_publishes_events(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    fanout = EventFanout(event_bus, name="factory-test")
    runtime = Runtime(migrated_database, event_bus, clock, fanout)
    servicer = build_marketplace_servicer(runtime)
    assert list(runtime.jobs) == ["marketplace.outbox"]
    stop = asyncio.Event()
    relay = asyncio.create_task(runtime.jobs["marketplace.outbox"](stop))
    try:
        owner = Principal("owner-1", frozenset({"space_owner"}))
        space = await servicer.service.spaces.create_space(
            owner,
            SpaceInput(
                name="Sala",
                description="",
                address="Calle 1",
                geo=None,
                time_zone="UTC",
                capacity=2,
                amenities=(),
                accessibility_features=(),
                rate_currency="EUR",
                rate_minor=100,
                availability=Availability(weekly=(WeeklySlot(6, time(9), time(12)),)),
            ),
        )
        async with event_bus.subscribe(
            ["marketplace.reservation_requested"], group="test", consumer="c", start="earliest"
        ) as subscription:
            made = await servicer.service.reservations.create_reservation(
                Principal("tutor-1", frozenset({"tutor"})),
                ReservationInput(space.id, "", "student-1", at(10, 10), at(10, 11)),
            )
            delivery = await asyncio.wait_for(anext(aiter(subscription)), 15)
            await delivery.ack()
        assert delivery.event.key == space.id
        assert delivery.event.payload["reservation"]["id"] == made.id
        assert delivery.event.payload["space_owner_id"] == "owner-1"
    finally:
        stop.set()
        await relay
        await fanout.close()
