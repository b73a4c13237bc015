"""No double booking, guaranteed by the database (exclusion constraint on PostgreSQL,
triggers on SQLite), under concurrency. Runs in both passes (KEIKO_TEST_BACKEND=real too)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.api.keiko.marketplace import v1 as pb
from services.kit.clock import FixedClock
from services.kit.db import Database, violated_constraint
from services.marketplace.common.domain import Money
from services.marketplace.reservations.domain import (
    NO_OVERLAP_CONSTRAINT,
    Reservation,
    ReservationStatus,
)
from services.marketplace.storage import MarketplaceRepository, new_id, reservations
from services.marketplace.tests.conftest import Harness, at

CONCURRENT = 50


async def _active(db: Database, space_id: str) -> int:
    async with db.session() as session:
        query = select(func.count()).where(
            reservations.c.space_id == space_id,
            reservations.c.status.in_(["requested", "confirmed"]),
        )
        return int((await session.execute(query)).scalar_one())


async def test_fifty_concurrent_bookings_of_one_slot_give_one_reservation(
    harness: Harness,
) -> None:
    space = await harness.create_space()

    async def attempt(index: int) -> pb.Reservation | grpc.StatusCode:
        client = harness.tutor(f"tutor-{index}")
        try:
            response = await client.create_reservation(
                pb.CreateReservationRequest(
                    space_id=space.id,
                    student_id=f"student-{index}",
                    # Different but overlapping windows: 10:00-11:00 .. 10:49-11:49.
                    start_time=at(10, 10, index % 50),
                    end_time=at(10, 11, index % 50),
                )
            )
        except grpc.aio.AioRpcError as error:
            assert error.details() == "slot already booked", error.details()
            return error.code()
        return response.reservation

    results = await asyncio.gather(*(attempt(i) for i in range(CONCURRENT)))
    won = [r for r in results if isinstance(r, pb.Reservation)]
    lost = [r for r in results if not isinstance(r, pb.Reservation)]
    assert len(won) == 1
    assert lost == [grpc.StatusCode.ALREADY_EXISTS] * (CONCURRENT - 1)
    assert await _active(harness.database, space.id) == 1


async def test_the_database_itself_refuses_overlaps(
    migrated_database: Database, harness: Harness
) -> None:
    """Straight to the repository, with no service check at all: 50 concurrent inserts of
    overlapping active reservations, each in its own transaction and connection."""
    space = await harness.create_space()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    template = Reservation(
        id="",
        space_id=space.id,
        tutor_id="t",
        student_id="s",
        start_time=at(10, 10),
        end_time=at(10, 12),
        status=ReservationStatus.REQUESTED,
        total_cost=Money("EUR", 100),
        safety_requirements=(),
        created_by="t",
        created_at=now,
        updated_at=now,
    )

    async def insert(index: int) -> str | None:
        row = replace(template, id=new_id(), start_time=at(10, 10, index % 60))
        try:
            async with migrated_database.transaction() as session:
                await MarketplaceRepository(session, migrated_database.dialect).insert_reservation(
                    row
                )
        except IntegrityError as exc:
            return violated_constraint(exc)
        return None

    results = await asyncio.gather(*(insert(i) for i in range(CONCURRENT)))
    assert results.count(None) == 1
    assert results.count(NO_OVERLAP_CONSTRAINT) == CONCURRENT - 1
    assert await _active(migrated_database, space.id) == 1

    # Inactive rows do not hold the slot; re-activating one that overlaps is refused too.
    cancelled = replace(template, id=new_id(), status=ReservationStatus.CANCELLED)
    async with migrated_database.transaction() as session:
        await MarketplaceRepository(session, migrated_database.dialect).insert_reservation(
            cancelled
        )
    with pytest.raises(IntegrityError) as caught:
        async with migrated_database.transaction() as session:
            await MarketplaceRepository(session, migrated_database.dialect).update_reservation(
                replace(cancelled, status=ReservationStatus.CONFIRMED)
            )
    assert violated_constraint(caught.value) == NO_OVERLAP_CONSTRAINT


async def test_concurrent_tutor_session_bookings(harness: Harness, clock: FixedClock) -> None:
    space = await harness.create_space()

    async def attempt(index: int) -> bool:
        try:
            await harness.tutor(f"tutor-{index}").book_tutor_session(
                pb.BookTutorSessionRequest(
                    space_id=space.id,
                    student_id="student-1",
                    start_time=at(10, 10),
                    end_time=at(10, 11),
                    subject="Algebra",
                )
            )
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.ALREADY_EXISTS
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert results.count(True) == 1
    assert await _active(harness.database, space.id) == 1


async def test_concurrent_retries_of_one_request_get_one_reservation(harness: Harness) -> None:
    space = await harness.create_space()
    results = await asyncio.gather(
        *(harness.book(space.id, at(10, 10), at(10, 11), request_id="same") for _ in range(10))
    )
    assert len({r.id for r in results}) == 1
    assert await _active(harness.database, space.id) == 1


async def test_concurrent_edits_of_one_space_do_not_lose_updates(harness: Harness) -> None:
    space = await harness.create_space()
    owner = harness.owner()
    await asyncio.gather(
        owner.update_space(pb.UpdateSpaceRequest(space_id=space.id, name="Renamed")),
        owner.update_space(pb.UpdateSpaceRequest(space_id=space.id, capacity=30)),
        owner.update_space(pb.UpdateSpaceRequest(space_id=space.id, description="Bright")),
        *(
            owner.add_certification(
                pb.AddCertificationRequest(
                    space_id=space.id, name="Fire", issuer="City", request_id="cert-1"
                )
            )
            for _ in range(5)
        ),
    )
    final = (await harness.anonymous().get_space(pb.GetSpaceRequest(space_id=space.id))).space
    assert (final.name, final.capacity, final.description) == ("Renamed", 30, "Bright")
    assert len(final.safety_certifications) == 1
