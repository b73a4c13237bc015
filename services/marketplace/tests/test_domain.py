"""Pure rules: cost, cancellation policy, availability in local time (DST), cursors."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kit.errors import ValidationError
from services.marketplace.common.domain import Money, decode_cursor, encode_cursor
from services.marketplace.reservations.domain import (
    RefundOutcome,
    cancellation_refund,
    reservation_cost,
)
from services.marketplace.spaces.availability import (
    Availability,
    AvailabilityException,
    ExceptionKind,
    WeeklySlot,
    free_intervals,
    is_open_for,
    merge,
    opening_intervals,
)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rate", "minutes", "cost"),
    [
        (2000, 60, 2000),
        (2000, 90, 3000),
        (1999, 15, 500),  # 499.75 -> 500 (half up)
        (1000, 20, 333),  # 333.33 -> 333
        (1001, 30, 501),  # 500.5 -> 501 (half up)
        (0, 120, 0),
    ],
)
def test_cost_is_rate_times_minutes_rounded_half_up(rate: int, minutes: int, cost: int) -> None:
    start = utc(1, 10, 10)
    assert reservation_cost(Money("EUR", rate), start, start + timedelta(minutes=minutes)) == (
        Money("EUR", cost)
    )


@given(st.integers(0, 10**9), st.integers(15, 24 * 60))
def test_cost_never_drifts_more_than_half_a_minor_unit(rate: int, minutes: int) -> None:
    start = utc(1, 10, 10)
    cost = reservation_cost(Money("EUR", rate), start, start + timedelta(minutes=minutes))
    assert abs(cost.amount_minor * 60 - rate * minutes) <= 30


def test_cancellation_policy_edges() -> None:
    total, start = Money("EUR", 999), utc(1, 10, 10)
    full = cancellation_refund(total, start, start - timedelta(hours=24), by_owner_or_admin=False)
    half = cancellation_refund(
        total, start, start - timedelta(hours=23, minutes=59), by_owner_or_admin=False
    )
    none = cancellation_refund(total, start, start, by_owner_or_admin=False)
    owner = cancellation_refund(total, start, start + timedelta(hours=1), by_owner_or_admin=True)
    assert full == (RefundOutcome.FULL_REFUND, total)
    assert half == (RefundOutcome.PARTIAL_REFUND, Money("EUR", 499))
    assert none == (RefundOutcome.NO_REFUND, Money("EUR", 0))
    assert owner == (RefundOutcome.FULL_REFUND, total)


SUNDAY_MORNINGS = Availability(weekly=(WeeklySlot(7, time(9), time(12)),))


def test_spring_forward_moves_the_utc_instants() -> None:
    # Europe/Madrid: CET (+1) until 2026-03-29 02:00, then CEST (+2).
    before = opening_intervals(SUNDAY_MORNINGS, "Europe/Madrid", utc(3, 22, 0), utc(3, 23, 0))
    after = opening_intervals(SUNDAY_MORNINGS, "Europe/Madrid", utc(3, 29, 0), utc(3, 30, 0))
    assert before == [(utc(3, 22, 8), utc(3, 22, 11))]
    assert after == [(utc(3, 29, 7), utc(3, 29, 10))]


def test_wall_times_in_the_gap_and_the_overlap() -> None:
    # 02:30 does not exist on 2026-03-29 in Madrid: read with the offset before the gap
    # (+1), i.e. 01:30 UTC = 03:30 CEST.
    gap = Availability(weekly=(WeeklySlot(7, time(2, 30), time(4)),))
    assert opening_intervals(gap, "Europe/Madrid", utc(3, 29, 0), utc(3, 29, 6)) == [
        (utc(3, 29, 1, 30), utc(3, 29, 2))
    ]
    # 02:30 happens twice on 2026-10-25: the first occurrence (CEST, 00:30 UTC).
    overlap = Availability(weekly=(WeeklySlot(7, time(2, 30), time(4)),))
    assert opening_intervals(overlap, "Europe/Madrid", utc(10, 25, 0), utc(10, 25, 6)) == [
        (utc(10, 25, 0, 30), utc(10, 25, 3))  # 04:00 CET = 03:00 UTC: a 2.5 h opening
    ]


def test_slots_merge_across_midnight_and_exceptions_apply_per_local_date() -> None:
    availability = Availability(
        weekly=(
            WeeklySlot(1, time(20), None),  # Monday 20:00-24:00
            WeeklySlot(2, time(0), time(2)),  # Tuesday 00:00-02:00
        ),
        exceptions=(
            AvailabilityException(
                ExceptionKind.CLOSED,
                start_date=datetime(2026, 1, 13).date(),
                end_date=datetime(2026, 1, 13).date(),
            ),
            AvailabilityException(
                ExceptionKind.EXTRA,
                start_date=datetime(2026, 1, 13).date(),
                end_date=datetime(2026, 1, 14).date(),
                start=time(9),
                end=time(10),
            ),
        ),
    )
    # Mon 12 Jan 20:00 to Tue 13 Jan 02:00 local: but Tuesday the 13th is closed.
    assert opening_intervals(availability, "UTC", utc(1, 12, 0), utc(1, 15, 0)) == [
        (utc(1, 12, 20), utc(1, 13, 0)),
        (utc(1, 14, 9), utc(1, 14, 10)),  # extra Wednesday; the Tuesday extra is closed too
    ]
    # The week after: one opening across midnight.
    assert is_open_for(availability, "UTC", utc(1, 19, 23), utc(1, 20, 1))


def test_free_intervals_subtract_bookings() -> None:
    week = Availability(weekly=(WeeklySlot(6, time(9), time(18)),))
    free = free_intervals(
        week,
        "UTC",
        utc(1, 10, 0),
        utc(1, 11, 0),
        [
            (utc(1, 10, 10), utc(1, 10, 11)),
            (utc(1, 10, 11), utc(1, 10, 12)),
            (utc(1, 10, 17), utc(1, 10, 19)),
        ],
    )
    assert free == [(utc(1, 10, 9), utc(1, 10, 10)), (utc(1, 10, 12), utc(1, 10, 17))]
    assert merge([(utc(1, 1, 2), utc(1, 1, 3)), (utc(1, 1, 1), utc(1, 1, 2))]) == [
        (utc(1, 1, 1), utc(1, 1, 3))
    ]


def test_cursor_round_trip_and_garbage() -> None:
    when = utc(1, 2, 3)
    assert decode_cursor(encode_cursor(when, "abc")) == (when, "abc")
    assert decode_cursor("") is None
    for bad in ("!!!", "e30", encode_cursor(when, "x")[:-3]):
        with pytest.raises(ValidationError) as caught:
            decode_cursor(bad)
        assert (caught.value.field, caught.value.reason) == ("page_token", "malformed page token")


@given(
    st.lists(
        st.tuples(st.integers(0, 7 * 24 * 4), st.integers(1, 16)),  # quarter-hour start, length
        max_size=12,
    )
)
def test_free_intervals_never_touch_a_booking_and_stay_open(
    bookings: list[tuple[int, int]],
) -> None:
    week = Availability(
        weekly=(WeeklySlot(1, time(8), time(12)), WeeklySlot(3, time(14), None)),
        exceptions=(
            AvailabilityException(
                ExceptionKind.EXTRA,
                start_date=datetime(2026, 3, 28).date(),
                end_date=datetime(2026, 3, 29).date(),
                start=time(1),
                end=time(4),
            ),
        ),
    )
    start, end = utc(3, 23, 0), utc(3, 30, 0)  # a week across the spring-forward night
    booked = [
        (start + timedelta(minutes=15 * q), start + timedelta(minutes=15 * (q + n)))
        for q, n in bookings
    ]
    free = free_intervals(week, "Europe/Madrid", start, end, booked)
    for (a_start, a_end), (b_start, _) in itertools.pairwise(free):
        assert a_start < a_end < b_start  # ordered, non-empty, non-touching
    for free_start, free_end in free:
        assert start <= free_start and free_end <= end
        assert is_open_for(week, "Europe/Madrid", free_start, free_end)
        assert all(free_end <= b_start or b_end <= free_start for b_start, b_end in booked)
