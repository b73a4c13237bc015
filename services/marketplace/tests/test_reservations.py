"""Reservations, tutor sessions and ratings over real gRPC: lifecycle, authorization of
every write, bad input, the cancellation policy with a FixedClock, time zones and DST."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb
from services.marketplace.tests.conftest import (
    Harness,
    at,
    expect_code,
    expect_invalid,
    outbox_events,
)

DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
CONFLICT = grpc.StatusCode.ALREADY_EXISTS


def slot(day: int, start: str, end: str) -> pb.WeeklySlot:
    return pb.WeeklySlot(weekday=pb.Weekday(day), start_time=start, end_time=end)


# -- lifecycle --------------------------------------------------------------------------------


async def test_reservation_lifecycle(harness: Harness) -> None:
    space = await harness.create_space(rate=2000)
    r = await harness.book(space.id, at(10, 10), at(10, 11, 30))
    assert r.status == pb.ReservationStatus.REQUESTED
    assert (r.tutor_id, r.student_id, r.created_by) == ("tutor-1", "student-1", "tutor-1")
    assert (r.total_cost.currency_code, r.total_cost.amount_minor) == ("EUR", 3000)

    confirm = pb.ConfirmReservationRequest(reservation_id=r.id)
    for caller in (harness.tutor(), harness.learner(), harness.owner("owner-2")):
        await expect_code(
            caller.confirm_reservation(confirm),
            DENIED,
            "only the space owner may confirm reservations",
        )
    confirmed = (await harness.owner().confirm_reservation(confirm)).reservation
    assert confirmed.status == pb.ReservationStatus.CONFIRMED
    assert (await harness.owner().confirm_reservation(confirm)).reservation.status == (
        pb.ReservationStatus.CONFIRMED
    )  # a retry

    complete = pb.CompleteReservationRequest(reservation_id=r.id)
    await expect_code(
        harness.owner().complete_reservation(complete),
        PRECONDITION,
        "the reservation has not ended yet",
    )
    harness.clock.set(at(10, 11, 30))
    await expect_code(
        harness.learner().complete_reservation(complete),
        DENIED,
        "only the space owner or the tutor may complete it",
    )
    # Issue 9: nothing is recorded about the student before they accept.
    assert confirmed.student_invitation == common_pb.InvitationStatus.PENDING
    await expect_code(
        harness.tutor().complete_reservation(complete),
        PRECONDITION,
        "the student has not accepted the invitation (pending): "
        "nothing is recorded about them until they do",
    )
    await harness.accept("student-1")
    done = (await harness.tutor().complete_reservation(complete)).reservation
    assert done.student_invitation == common_pb.InvitationStatus.ACCEPTED
    assert done.status == pb.ReservationStatus.COMPLETED
    await expect_code(
        harness.owner().confirm_reservation(confirm),
        PRECONDITION,
        "reservation is completed, not requested",
    )
    await expect_code(
        harness.learner().cancel_reservation(pb.CancelReservationRequest(reservation_id=r.id)),
        PRECONDITION,
        "a completed reservation cannot be cancelled",
    )
    kinds = [
        (await outbox_events(harness.database, f"marketplace.reservation_{k}"))[0]["kind"]
        for k in ("requested", "confirmed", "completed")
    ]
    assert kinds == ["requested", "confirmed", "completed"]


async def test_complete_needs_a_confirmed_reservation(harness: Harness) -> None:
    space = await harness.create_space()
    r = await harness.book(space.id, at(10, 10), at(10, 11))
    harness.clock.set(at(10, 12))
    await expect_code(
        harness.owner().complete_reservation(pb.CompleteReservationRequest(reservation_id=r.id)),
        PRECONDITION,
        "reservation is requested, not confirmed",
    )
    await expect_code(
        harness.owner().confirm_reservation(pb.ConfirmReservationRequest(reservation_id=r.id)),
        PRECONDITION,
        "the reservation has already ended",
    )


def _reservation(**fields: Any) -> pb.CreateReservationRequest:
    base: dict[str, Any] = {
        "student_id": "student-1",
        "start_time": at(10, 10),
        "end_time": at(10, 11),
    }
    merged = {**base, **fields}
    return pb.CreateReservationRequest(**{k: v for k, v in merged.items() if v is not None})


BAD_RESERVATIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"start_time": None}, "slot.start_time", "is required"),
    ({"end_time": None}, "slot.end_time", "is required"),
    ({"end_time": at(10, 9)}, "slot.end_time", "must be after start_time"),
    ({"end_time": at(10, 10, 10)}, "slot.end_time", "reservations last at least 15 minutes"),
    ({"end_time": at(11, 11)}, "slot.end_time", "reservations last at most 24 hours"),
    (
        {"start_time": at(10, 10) + timedelta(seconds=30)},
        "slot.start_time",
        "must be on a whole minute",
    ),
    (
        {
            "start_time": datetime(2025, 12, 31, 10, tzinfo=at(1, 0).tzinfo),
            "end_time": datetime(2025, 12, 31, 11, tzinfo=at(1, 0).tzinfo),
        },
        "slot.start_time",
        "must be in the future",
    ),
    (
        {"start_time": at(10, 10).replace(year=2027), "end_time": at(10, 11).replace(year=2027)},
        "slot.start_time",
        "must be within a year from now",
    ),
    ({"student_id": "tutor-1"}, "student_id", "must differ from tutor_id"),
    ({"student_id": "s" * 65}, "student_id", "must be at most 64 characters"),
    ({"space_id": ""}, "space_id", "is required"),
    (
        {"safety_requirements": [pb.SafetyRequirement.UNSPECIFIED]},
        "safety_requirements[0]",
        "must be a known safety requirement",
    ),
]


@pytest.mark.parametrize(("fields", "field_path", "reason"), BAD_RESERVATIONS)
async def test_create_reservation_rejects_bad_input(
    harness: Harness, fields: dict[str, Any], field_path: str, reason: str
) -> None:
    space = await harness.create_space()
    fields = {"space_id": space.id, **fields}
    await expect_invalid(
        harness.tutor().create_reservation(_reservation(**fields)), field_path, reason
    )


async def test_reservation_errors_for_state_and_authorization(harness: Harness) -> None:
    space = await harness.create_space(
        availability=pb.Availability(weekly=[slot(6, "09:00", "12:00")])
    )
    await expect_code(
        harness.tutor().create_reservation(_reservation(space_id="missing")),
        grpc.StatusCode.NOT_FOUND,
        "space missing not found",
    )
    # Saturday 10th 10:00-11:00 is open; 11:30-12:30 runs past closing.
    await expect_code(
        harness.tutor().create_reservation(
            _reservation(space_id=space.id, start_time=at(10, 11, 30), end_time=at(10, 12, 30))
        ),
        PRECONDITION,
        "the space is not open for the whole slot (opening hours are in UTC)",
    )
    # Booking for two other people.
    await expect_code(
        harness.tutor("tutor-9").create_reservation(
            _reservation(space_id=space.id, tutor_id="tutor-1", student_id="student-1")
        ),
        DENIED,
        "you may only book for yourself, as its tutor or student",
    )
    # Minors need a child-safe space.
    await expect_code(
        harness.tutor().create_reservation(
            _reservation(
                space_id=space.id, safety_requirements=[pb.SafetyRequirement.GUARDIAN_PRESENT]
            )
        ),
        PRECONDITION,
        "the space is not child-safe: minors may only book child-safe spaces",
    )
    safe = await harness.verified_child_safe_space()
    ok = await harness.tutor().create_reservation(
        _reservation(space_id=safe.id, safety_requirements=[pb.SafetyRequirement.GUARDIAN_PRESENT])
    )
    assert ok.reservation.safety_requirements == [pb.SafetyRequirement.GUARDIAN_PRESENT]
    # A student books with a tutor; the tutor empty means the caller.
    mine = await harness.learner("student-7").create_reservation(
        pb.CreateReservationRequest(
            space_id=space.id,
            tutor_id="tutor-3",
            student_id="student-7",
            start_time=at(10, 9),
            end_time=at(10, 10),
        )
    )
    assert mine.reservation.created_by == "student-7"
    solo = await harness.learner("student-8").create_reservation(
        pb.CreateReservationRequest(space_id=safe.id, start_time=at(12, 9), end_time=at(12, 10))
    )
    assert (solo.reservation.tutor_id, solo.reservation.student_id) == ("student-8", "")


async def test_overlapping_bookings_are_refused(harness: Harness) -> None:
    space = await harness.create_space()
    first = await harness.book(space.id, at(10, 10), at(10, 12))
    for start, end in [
        (at(10, 11), at(10, 13)),
        (at(10, 9), at(10, 10, 15)),
        (at(10, 10), at(10, 12)),
    ]:
        await expect_code(
            harness.tutor("tutor-2").create_reservation(
                _reservation(space_id=space.id, start_time=start, end_time=end)
            ),
            CONFLICT,
            "slot already booked",
        )
    # Touching is not overlapping: [12:00, 13:00) after [10:00, 12:00).
    await harness.book(space.id, at(10, 12), at(10, 13), tutor="tutor-2")
    # Another space is independent.
    other = await harness.create_space()
    await harness.book(other.id, at(10, 10), at(10, 12))
    # Cancelling frees the slot.
    await harness.tutor().cancel_reservation(pb.CancelReservationRequest(reservation_id=first.id))
    again = await harness.book(space.id, at(10, 10), at(10, 12), tutor="tutor-3")
    assert again.status == pb.ReservationStatus.REQUESTED


async def test_create_reservation_is_idempotent_by_request_id(harness: Harness) -> None:
    space = await harness.create_space()
    first = await harness.book(space.id, at(10, 10), at(10, 11), request_id="book-1")
    again = await harness.book(space.id, at(10, 10), at(10, 11), request_id="book-1")
    assert again.id == first.id
    await expect_invalid(
        harness.tutor().create_reservation(
            _reservation(
                space_id=space.id, start_time=at(11, 10), end_time=at(11, 11), request_id="book-1"
            )
        ),
        "request_id",
        "was already used for a different reservation",
    )
    # The same request id of another caller is another request.
    other = await harness.book(
        space.id, at(11, 10), at(11, 11), tutor="tutor-2", request_id="book-1"
    )
    assert other.id != first.id


# -- cancellation policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cancel_at", "total", "outcome", "refund"),
    [
        (at(8, 10), 2000, pb.RefundOutcome.FULL_REFUND, 2000),  # 48 h before
        (at(9, 10), 2000, pb.RefundOutcome.FULL_REFUND, 2000),  # exactly 24 h before
        (at(9, 10, 1), 2000, pb.RefundOutcome.PARTIAL_REFUND, 1000),  # 23 h 59 min before
        (at(10, 9, 59), 2501, pb.RefundOutcome.PARTIAL_REFUND, 1250),  # 50 %, rounded down
        (at(10, 10), 2000, pb.RefundOutcome.NO_REFUND, 0),  # at the start
        (at(10, 12), 2000, pb.RefundOutcome.NO_REFUND, 0),  # after the end
    ],
)
async def test_cancellation_policy(
    harness: Harness, cancel_at: datetime, total: int, outcome: pb.RefundOutcome, refund: int
) -> None:
    space = await harness.create_space(rate=total)
    r = await harness.book(space.id, at(10, 10), at(10, 11))
    assert r.total_cost.amount_minor == total
    harness.clock.set(cancel_at)
    cancelled = (
        await harness.learner().cancel_reservation(
            pb.CancelReservationRequest(reservation_id=r.id, reason="sick")
        )
    ).reservation
    assert cancelled.status == pb.ReservationStatus.CANCELLED
    c = cancelled.cancellation
    assert (c.cancelled_by, c.cancelled_at, c.reason) == ("student-1", cancel_at, "sick")
    assert (c.outcome, c.refund.currency_code, c.refund.amount_minor) == (outcome, "EUR", refund)


async def test_owner_cancellation_always_refunds_in_full(harness: Harness) -> None:
    space = await harness.create_space(rate=2000)
    r = await harness.book(space.id, at(10, 10), at(10, 11))
    harness.clock.set(at(10, 10, 30))
    cancelled = (
        await harness.owner().cancel_reservation(pb.CancelReservationRequest(reservation_id=r.id))
    ).reservation
    assert cancelled.cancellation.outcome == pb.RefundOutcome.FULL_REFUND
    assert cancelled.cancellation.refund.amount_minor == 2000
    retry = await harness.owner().cancel_reservation(
        pb.CancelReservationRequest(reservation_id=r.id)
    )
    assert retry.reservation.cancellation.cancelled_at == cancelled.cancellation.cancelled_at
    [event] = await outbox_events(harness.database, "marketplace.reservation_cancelled")
    assert event["reservation"]["cancellation"]["refund"] == {
        "currency": "EUR",
        "amount_minor": 2000,
    }


async def test_nobody_cancels_or_reads_another_users_reservation(harness: Harness) -> None:
    space = await harness.create_space()
    r = await harness.book(space.id, at(10, 10), at(10, 11))
    cancel = pb.CancelReservationRequest(reservation_id=r.id)
    message = (
        "only the reservation's tutor, student, booker, the space owner or an admin may cancel it"
    )
    for caller in (
        harness.learner("student-2"),
        harness.tutor("tutor-2"),
        harness.owner("owner-2"),
    ):
        await expect_code(caller.cancel_reservation(cancel), DENIED, message)
        await expect_code(
            caller.get_reservation(pb.GetReservationRequest(reservation_id=r.id)),
            DENIED,
            "not a participant of this reservation nor the space owner",
        )
    for reader in (harness.learner(), harness.tutor(), harness.owner(), harness.admin()):
        got = await reader.get_reservation(pb.GetReservationRequest(reservation_id=r.id))
        assert got.reservation.id == r.id
    await expect_code(
        harness.tutor().cancel_reservation(pb.CancelReservationRequest(reservation_id="nope")),
        grpc.StatusCode.NOT_FOUND,
        "reservation nope not found",
    )
    await expect_invalid(
        harness.tutor().cancel_reservation(
            pb.CancelReservationRequest(reservation_id=r.id, reason="x" * 501)
        ),
        "reason",
        "must be at most 500 characters",
    )
    assert (await harness.admin().cancel_reservation(cancel)).reservation.status == (
        pb.ReservationStatus.CANCELLED
    )


async def test_list_reservations(harness: Harness) -> None:
    space = await harness.create_space()
    other_space = await harness.create_space("owner-2")
    made = [await harness.book(space.id, at(10 + i, 10), at(10 + i, 11)) for i in range(3)]
    await harness.book(other_space.id, at(10, 10), at(10, 11), tutor="tutor-2", student="student-2")
    mine = await harness.learner().list_reservations(pb.ListReservationsRequest(page_size=2))
    assert [r.id for r in mine.reservations] == [made[0].id, made[1].id]
    rest = await harness.learner().list_reservations(
        pb.ListReservationsRequest(page_size=2, page_token=mine.next_page_token)
    )
    assert [r.id for r in rest.reservations] == [made[2].id] and rest.next_page_token == ""
    await harness.owner().confirm_reservation(
        pb.ConfirmReservationRequest(reservation_id=made[1].id)
    )
    of_space = await harness.owner().list_reservations(
        pb.ListReservationsRequest(
            space_id=space.id,
            statuses=[pb.ReservationStatus.from_string("CONFIRMED")],
        )
    )
    assert [r.id for r in of_space.reservations] == [made[1].id]
    windowed = await harness.owner().list_reservations(
        pb.ListReservationsRequest(
            space_id=space.id, window=pb.TimeWindow(start_time=at(11, 0), end_time=at(13, 0))
        )
    )
    assert [r.id for r in windowed.reservations] == [made[1].id, made[2].id]
    await expect_code(
        harness.owner("owner-2").list_reservations(pb.ListReservationsRequest(space_id=space.id)),
        DENIED,
        "only the space owner may list its reservations",
    )
    await expect_invalid(
        harness.owner().list_reservations(
            pb.ListReservationsRequest(statuses=[pb.ReservationStatus.from_string("UNSPECIFIED")])
        ),
        "statuses[0]",
        "must be a known reservation status",
    )


# -- time zones and DST -----------------------------------------------------------------------


async def test_availability_follows_the_spaces_time_zone_across_dst(harness: Harness) -> None:
    """Madrid opens Sundays 09:00-12:00 local. Europe moves to summer time on 2026-03-29:
    09:00 local is 08:00 UTC the Sunday before and 07:00 UTC that day."""
    space = await harness.create_space(
        time_zone="Europe/Madrid",
        availability=pb.Availability(weekly=[slot(7, "09:00", "12:00")]),
    )
    march = 3
    not_open = "the space is not open for the whole slot (opening hours are in Europe/Madrid)"
    # Winter (CET, UTC+1): 08:00-09:00 UTC is 09:00-10:00 local.
    await harness.book(space.id, at(22, 8, month=march), at(22, 9, month=march))
    await expect_code(
        harness.tutor().create_reservation(
            _reservation(
                space_id=space.id,
                start_time=at(22, 7, month=march),
                end_time=at(22, 8, month=march),
            )
        ),
        PRECONDITION,
        not_open,
    )
    # Summer (CEST, UTC+2) from that Sunday: 07:00-08:00 UTC is 09:00-10:00 local...
    await harness.book(space.id, at(29, 7, month=march), at(29, 8, month=march))
    # ...and 10:00-11:00 UTC would be 12:00-13:00 local, after closing.
    await expect_code(
        harness.tutor().create_reservation(
            _reservation(
                space_id=space.id,
                start_time=at(29, 10, month=march),
                end_time=at(29, 11, month=march),
            )
        ),
        PRECONDITION,
        not_open,
    )
    free = await harness.anonymous().get_space_availability(
        pb.GetSpaceAvailabilityRequest(
            space_id=space.id,
            window=pb.TimeWindow(
                start_time=at(28, 0, month=march), end_time=at(30, 0, month=march)
            ),
        )
    )
    assert [(w.start_time, w.end_time) for w in free.free] == [
        (at(29, 8, month=march), at(29, 10, month=march))
    ]


async def test_new_york_space_in_the_fall_back_week(harness: Harness) -> None:
    """US summer time ends 2026-11-01: a Monday 08:00-10:00 slot in New York is 13:00-15:00
    UTC on 2 November (EST) and 12:00-14:00 UTC on 26 October (EDT)."""
    space = await harness.create_space(
        time_zone="America/New_York",
        availability=pb.Availability(weekly=[slot(1, "08:00", "10:00")]),
    )
    harness.clock.set(at(1, 0, month=10))
    await harness.book(space.id, at(26, 12, month=10), at(26, 14, month=10))
    await harness.book(space.id, at(2, 13, month=11), at(2, 15, month=11))
    await expect_code(
        harness.tutor().create_reservation(
            _reservation(
                space_id=space.id, start_time=at(2, 12, month=11), end_time=at(2, 13, month=11)
            )
        ),
        PRECONDITION,
        "the space is not open for the whole slot (opening hours are in America/New_York)",
    )


# -- tutor sessions ---------------------------------------------------------------------------


def _session_request(space_id: str, **fields: Any) -> pb.BookTutorSessionRequest:
    base: dict[str, Any] = {
        "space_id": space_id,
        "student_id": "student-1",
        "start_time": at(10, 10),
        "end_time": at(10, 11),
        "subject": "Linear algebra",
        "class_id": "class-2",
    }
    return pb.BookTutorSessionRequest(**{**base, **fields})


async def test_tutor_session_books_completes_and_announces(harness: Harness) -> None:
    space = await harness.create_space(rate=3000)
    booked = await harness.tutor().book_tutor_session(_session_request(space.id, request_id="ts-1"))
    session, reservation = booked.session, booked.reservation
    assert session.status == pb.TutorSessionStatus.SCHEDULED
    assert (session.reservation_id, reservation.tutor_session_id) == (reservation.id, session.id)
    assert reservation.total_cost.amount_minor == 3000
    retry = await harness.tutor().book_tutor_session(_session_request(space.id, request_id="ts-1"))
    assert retry.session.id == session.id

    complete = pb.CompleteTutorSessionRequest(session_id=session.id)
    await expect_code(
        harness.learner().complete_tutor_session(complete),
        DENIED,
        "only the session's tutor may complete it",
    )
    await expect_code(
        harness.tutor().complete_tutor_session(complete),
        PRECONDITION,
        "reservation is requested, not confirmed",
    )
    await harness.owner().confirm_reservation(
        pb.ConfirmReservationRequest(reservation_id=reservation.id)
    )
    await expect_code(
        harness.tutor().complete_tutor_session(complete),
        PRECONDITION,
        "the reservation has not ended yet",
    )
    harness.clock.set(at(10, 11))
    await harness.accept("student-1")
    await expect_code(
        harness.owner().complete_reservation(
            pb.CompleteReservationRequest(reservation_id=reservation.id)
        ),
        PRECONDITION,
        f"this reservation holds tutor session {session.id}: "
        "its tutor completes it with CompleteTutorSession",
    )
    done = (await harness.tutor().complete_tutor_session(complete)).session
    assert done.status == pb.TutorSessionStatus.COMPLETED
    again = (await harness.tutor().complete_tutor_session(complete)).session
    assert again.status == pb.TutorSessionStatus.COMPLETED
    held = await harness.owner().get_reservation(
        pb.GetReservationRequest(reservation_id=reservation.id)
    )
    assert held.reservation.status == pb.ReservationStatus.COMPLETED

    [event] = await outbox_events(harness.database, "marketplace.tutor_session_completed")
    assert event == {
        "session_id": session.id,
        "tutor_id": "tutor-1",
        "student_id": "student-1",
        "space_id": space.id,
        "reservation_id": reservation.id,
        "start_time": at(10, 10).isoformat(),
        "end_time": at(10, 11).isoformat(),
        "subject": "Linear algebra",
        "class_id": "class-2",
        "status": "completed",
        "actor_id": "tutor-1",
        "occurred_at": at(10, 11).isoformat(),
        "student_consent": "accepted",
    }
    [booked_event] = await outbox_events(harness.database, "marketplace.tutor_session_booked")
    assert booked_event["status"] == "scheduled"
    for reader in (harness.tutor(), harness.learner()):
        got = await reader.get_tutor_session(pb.GetTutorSessionRequest(session_id=session.id))
        assert got.session.subject == "Linear algebra"
    await expect_code(
        harness.learner("student-2").get_tutor_session(
            pb.GetTutorSessionRequest(session_id=session.id)
        ),
        DENIED,
        "only the session's tutor or student may read it",
    )


async def test_booking_a_tutor_session_is_the_tutors_act(harness: Harness) -> None:
    space = await harness.create_space()
    await expect_code(
        harness.learner().book_tutor_session(_session_request(space.id, tutor_id="tutor-1")),
        DENIED,
        "only the tutor (or an admin) books a tutor session",
    )
    await expect_code(
        harness.learner("someone").book_tutor_session(_session_request(space.id)),
        DENIED,
        "requires role tutor",
    )
    await expect_invalid(
        harness.tutor().book_tutor_session(_session_request(space.id, subject=" ")),
        "subject",
        "is required",
    )
    await expect_invalid(
        harness.tutor().book_tutor_session(_session_request(space.id, student_id="")),
        "student_id",
        "is required",
    )
    await expect_invalid(
        harness.tutor().book_tutor_session(_session_request(space.id, end_time=at(10, 9))),
        "slot.end_time",
        "must be after start_time",
    )
    made = await harness.admin().book_tutor_session(_session_request(space.id, tutor_id="tutor-5"))
    assert made.session.tutor_id == "tutor-5"
    await expect_code(
        harness.tutor().book_tutor_session(_session_request(space.id)),
        CONFLICT,
        "slot already booked",
    )


async def test_cancel_tutor_session_cancels_its_reservation(harness: Harness) -> None:
    space = await harness.create_space(rate=2000)
    booked = await harness.tutor().book_tutor_session(_session_request(space.id))
    request = pb.CancelTutorSessionRequest(session_id=booked.session.id, reason="exam moved")
    await expect_code(
        harness.learner("student-2").cancel_tutor_session(request),
        DENIED,
        "only the reservation's tutor, student, booker, the space owner or an admin may cancel it",
    )
    harness.clock.set(at(10, 0))  # 10 h before: half refund
    cancelled = await harness.learner().cancel_tutor_session(request)
    assert cancelled.session.status == pb.TutorSessionStatus.CANCELLED
    assert cancelled.reservation.status == pb.ReservationStatus.CANCELLED
    assert cancelled.reservation.cancellation.refund.amount_minor == 1000
    await expect_code(
        harness.tutor().complete_tutor_session(
            pb.CompleteTutorSessionRequest(session_id=booked.session.id)
        ),
        PRECONDITION,
        "the session was cancelled",
    )
    [event] = await outbox_events(harness.database, "marketplace.tutor_session_cancelled")
    assert event["actor_id"] == "student-1"


async def test_list_tutor_sessions(harness: Harness) -> None:
    space = await harness.create_space()
    first = await harness.tutor().book_tutor_session(_session_request(space.id))
    second = await harness.tutor("tutor-2").book_tutor_session(
        _session_request(
            space.id, student_id="student-2", start_time=at(11, 10), end_time=at(11, 11)
        )
    )
    mine = await harness.learner().list_tutor_sessions(pb.ListTutorSessionsRequest())
    assert [s.id for s in mine.sessions] == [first.session.id]
    # Naming someone else does not widen what a caller sees.
    snoop = await harness.learner().list_tutor_sessions(
        pb.ListTutorSessionsRequest(tutor_id="tutor-2")
    )
    assert snoop.sessions == []
    owned = await harness.owner().list_tutor_sessions(
        pb.ListTutorSessionsRequest(space_id=space.id, page_size=1)
    )
    assert [s.id for s in owned.sessions] == [first.session.id] and owned.next_page_token
    rest = await harness.owner().list_tutor_sessions(
        pb.ListTutorSessionsRequest(space_id=space.id, page_token=owned.next_page_token)
    )
    assert [s.id for s in rest.sessions] == [second.session.id]


# -- ratings ----------------------------------------------------------------------------------


def _rating(space_id: str, reservation_id: str, **scores: Any) -> pb.RateSpaceRequest:
    base: dict[str, Any] = {"overall": 5, "safety": 4, "cleanliness": 3, "accessibility": 4}
    return pb.RateSpaceRequest(
        space_id=space_id, reservation_id=reservation_id, **{**base, **scores}
    )


async def test_space_ratings(harness: Harness) -> None:
    space = await harness.create_space()
    r = await harness.book(space.id, at(10, 10), at(10, 11))
    await expect_code(
        harness.learner().rate_space(_rating(space.id, r.id)),
        PRECONDITION,
        "only a completed reservation can be rated",
    )
    await harness.owner().confirm_reservation(pb.ConfirmReservationRequest(reservation_id=r.id))
    harness.clock.set(at(10, 11))
    await harness.accept("student-1")
    await harness.owner().complete_reservation(pb.CompleteReservationRequest(reservation_id=r.id))

    for field in ("overall", "safety", "cleanliness", "accessibility"):
        for bad in (0, 6):
            await expect_invalid(
                harness.learner().rate_space(_rating(space.id, r.id, **{field: bad})),
                f"rating.{field}",
                "must be between 1 and 5",
            )
    await expect_code(
        harness.learner("student-2").rate_space(_rating(space.id, r.id)),
        DENIED,
        "only a participant of the reservation may rate it",
    )
    other = await harness.create_space()
    await expect_invalid(
        harness.learner().rate_space(_rating(other.id, r.id)),
        "reservation_id",
        "is not a reservation of this space",
    )
    rated = await harness.learner().rate_space(_rating(space.id, r.id, comment="bright, calm"))
    assert (rated.rating.rater_id, rated.rating.comment) == ("student-1", "bright, calm")
    assert rated.summary.rating_count == 1 and rated.summary.overall == 5.0
    await expect_code(
        harness.learner().rate_space(_rating(space.id, r.id)),
        CONFLICT,
        "you already rated this reservation",
    )
    harness.clock.advance(timedelta(minutes=5))
    by_tutor = await harness.tutor().rate_space(
        _rating(space.id, r.id, overall=2, safety=5, cleanliness=5, accessibility=1)
    )
    summary = by_tutor.summary
    assert (summary.rating_count, summary.overall, summary.safety) == (2, 3.5, 4.5)
    assert (summary.cleanliness, summary.accessibility) == (4.0, 2.5)
    fetched = await harness.anonymous().get_space(pb.GetSpaceRequest(space_id=space.id))
    assert fetched.space.rating_summary.to_dict() == summary.to_dict()
    listed = await harness.anonymous().list_space_ratings(
        pb.ListSpaceRatingsRequest(space_id=space.id, page_size=1)
    )
    assert [x.rater_id for x in listed.ratings] == ["tutor-1"]  # newest first
    rest = await harness.anonymous().list_space_ratings(
        pb.ListSpaceRatingsRequest(space_id=space.id, page_token=listed.next_page_token)
    )
    assert [x.rater_id for x in rest.ratings] == ["student-1"]


async def test_owners_cannot_rate_their_own_space(harness: Harness) -> None:
    space = await harness.create_space()
    r = await harness.owner().create_reservation(
        pb.CreateReservationRequest(space_id=space.id, start_time=at(10, 10), end_time=at(10, 11))
    )
    await harness.owner().confirm_reservation(
        pb.ConfirmReservationRequest(reservation_id=r.reservation.id)
    )
    harness.clock.set(at(10, 12))
    await harness.owner().complete_reservation(
        pb.CompleteReservationRequest(reservation_id=r.reservation.id)
    )
    await expect_code(
        harness.owner().rate_space(_rating(space.id, r.reservation.id)),
        DENIED,
        "owners cannot rate their own space",
    )


async def test_a_retry_after_the_start_still_returns_the_reservation(harness: Harness) -> None:
    space = await harness.create_space()
    first = await harness.book(space.id, at(10, 10), at(10, 11), request_id="late-retry")
    harness.clock.set(at(10, 10, 30))
    again = await harness.book(space.id, at(10, 10), at(10, 11), request_id="late-retry")
    assert again.id == first.id
