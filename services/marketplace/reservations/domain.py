"""Reservations: a space for a time window, its cost and the cancellation policy.
Plain types and rules, no I/O; everything time-dependent takes `now` from the caller.

- **Cost** = hourly rate (integer minor units) x duration in whole minutes / 60, rounded
  half up to the minor unit: `(rate * minutes + 30) // 60`. Reservations start and end on
  whole minutes, last 15 minutes to 24 hours.
- **Cancellation policy** (refund of the total cost): by the space owner or an admin,
  always a full refund; by the tutor/student/booker, a full refund when cancelled at least
  24 h before the start, 50 % (rounded down to the minor unit) when less than 24 h before
  the start, nothing once the reservation has started.
- **No double booking** is the database's: see `NO_OVERLAP_CONSTRAINT`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.kit.errors import ValidationError
from services.kit.events import Event
from services.kit.invitations import InvitationStatus
from services.marketplace.common.domain import Money, validate_window

MAX_REASON = 500
MIN_RESERVATION = timedelta(minutes=15)
MAX_RESERVATION = timedelta(hours=24)
MAX_BOOKING_HORIZON = timedelta(days=366)
FULL_REFUND_NOTICE = timedelta(hours=24)
PARTIAL_REFUND_PERCENT = 50
SAFETY_GUARDIAN_PRESENT = "GUARDIAN_PRESENT"
# The one name both engines report for an overlapping active reservation: the PostgreSQL
# exclusion constraint, and the message of the SQLite trigger's RAISE(ABORT, ...).
NO_OVERLAP_CONSTRAINT = "ex_reservations_no_overlap"


class ReservationStatus(enum.StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"

    @property
    def active(self) -> bool:
        """Holds the slot: these are the rows the no-overlap constraint covers."""
        return self in (ReservationStatus.REQUESTED, ReservationStatus.CONFIRMED)


ACTIVE_STATUSES = (ReservationStatus.REQUESTED, ReservationStatus.CONFIRMED)


class RefundOutcome(enum.StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    NO_REFUND = "no_refund"


@dataclass(frozen=True)
class Cancellation:
    cancelled_by: str
    cancelled_at: datetime
    reason: str
    outcome: RefundOutcome
    refund: Money


@dataclass(frozen=True)
class Reservation:
    id: str
    space_id: str
    tutor_id: str
    student_id: str
    start_time: datetime
    end_time: datetime
    status: ReservationStatus
    total_cost: Money
    safety_requirements: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    tutor_session_id: str = ""
    cancellation: Cancellation | None = None
    request_id: str = ""
    # The named student's answer to their invitation (None: nobody was invited). Read
    # from the invitations, not stored with the reservation.
    student_invitation: InvitationStatus | None = None

    def participants(self) -> set[str]:
        return {p for p in (self.tutor_id, self.student_id, self.created_by) if p}

    def to_json(self) -> dict[str, Any]:
        """The event payload form (JSON types only)."""
        data: dict[str, Any] = {
            "id": self.id,
            "space_id": self.space_id,
            "tutor_id": self.tutor_id,
            "student_id": self.student_id,
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat(),
            "status": str(self.status),
            "total_cost": self.total_cost.to_json(),
            "safety_requirements": list(self.safety_requirements),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tutor_session_id": self.tutor_session_id,
            "cancellation": None,
        }
        if self.cancellation is not None:
            c = self.cancellation
            data["cancellation"] = {
                "cancelled_by": c.cancelled_by,
                "cancelled_at": c.cancelled_at.isoformat(),
                "reason": c.reason,
                "outcome": str(c.outcome),
                "refund": c.refund.to_json(),
            }
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> Reservation:
        c = data.get("cancellation")
        return Reservation(
            id=data["id"],
            space_id=data["space_id"],
            tutor_id=data["tutor_id"],
            student_id=data["student_id"],
            start_time=datetime.fromisoformat(data["start_time"]),
            end_time=datetime.fromisoformat(data["end_time"]),
            status=ReservationStatus(data["status"]),
            total_cost=Money(data["total_cost"]["currency"], data["total_cost"]["amount_minor"]),
            safety_requirements=tuple(data["safety_requirements"]),
            created_by=data["created_by"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            tutor_session_id=data.get("tutor_session_id", ""),
            cancellation=None
            if not c
            else Cancellation(
                cancelled_by=c["cancelled_by"],
                cancelled_at=datetime.fromisoformat(c["cancelled_at"]),
                reason=c["reason"],
                outcome=RefundOutcome(c["outcome"]),
                refund=Money(c["refund"]["currency"], c["refund"]["amount_minor"]),
            ),
        )


@dataclass(frozen=True)
class ReservationInput:
    space_id: str
    tutor_id: str
    student_id: str
    start_time: datetime | None
    end_time: datetime | None
    safety_requirements: tuple[str, ...] = ()
    request_id: str = ""


# Topics this capability publishes (through the outbox).
TOPIC_RESERVATION = {
    ReservationStatus.REQUESTED: "marketplace.reservation_requested",
    ReservationStatus.CONFIRMED: "marketplace.reservation_confirmed",
    ReservationStatus.CANCELLED: "marketplace.reservation_cancelled",
    ReservationStatus.COMPLETED: "marketplace.reservation_completed",
}
RESERVATION_TOPICS = tuple(TOPIC_RESERVATION.values())


def validate_booking_slot(
    start: datetime | None, end: datetime | None, now: datetime, field_path: str = "slot"
) -> tuple[datetime, datetime]:
    start, end = validate_window(start, end, field_path)
    if start.second or start.microsecond:
        raise ValidationError(f"{field_path}.start_time", "must be on a whole minute")
    if end.second or end.microsecond:
        raise ValidationError(f"{field_path}.end_time", "must be on a whole minute")
    if end - start < MIN_RESERVATION:
        raise ValidationError(f"{field_path}.end_time", "reservations last at least 15 minutes")
    if end - start > MAX_RESERVATION:
        raise ValidationError(f"{field_path}.end_time", "reservations last at most 24 hours")
    if start <= now:
        raise ValidationError(f"{field_path}.start_time", "must be in the future")
    if start - now > MAX_BOOKING_HORIZON:
        raise ValidationError(f"{field_path}.start_time", "must be within a year from now")
    return start, end


def reservation_cost(hourly_rate: Money, start: datetime, end: datetime) -> Money:
    """Rate x duration in whole minutes, rounded half up to the minor unit."""
    minutes = int((end - start).total_seconds()) // 60
    return Money(hourly_rate.currency, (hourly_rate.amount_minor * minutes + 30) // 60)


def cancellation_refund(
    total: Money, start: datetime, now: datetime, *, by_owner_or_admin: bool
) -> tuple[RefundOutcome, Money]:
    """The cancellation policy (see the module docstring)."""
    if by_owner_or_admin or now <= start - FULL_REFUND_NOTICE:
        return RefundOutcome.FULL_REFUND, total
    if now < start:
        refund = total.amount_minor * PARTIAL_REFUND_PERCENT // 100
        return RefundOutcome.PARTIAL_REFUND, Money(total.currency, refund)
    return RefundOutcome.NO_REFUND, Money(total.currency, 0)


def reservation_event(r: Reservation, owner_id: str) -> Event:
    """`marketplace.reservation_<status>`: the whole reservation and the space's owner."""
    return Event(
        TOPIC_RESERVATION[r.status],
        key=r.space_id,
        occurred_at=r.updated_at,
        payload={"kind": str(r.status), "space_owner_id": owner_id, "reservation": r.to_json()},
    )
