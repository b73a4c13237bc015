"""Marketplace domain: learning spaces, availability, reservations, tutor sessions, ratings.

Plain types and rules, no I/O. Everything time-dependent takes `now` from the caller
(who reads it from a `Clock`).

Rules worth knowing (also in docs/benchmarks.md and the service docstring):

- **Availability** is a weekly schedule of local "HH:MM" slots in the space's IANA time
  zone plus dated exceptions (CLOSED wins over everything on its dates; EXTRA adds
  openings). Local wall times become instants with `zoneinfo` (fold=0): a wall time that
  does not exist (the spring-forward gap) is read with the offset before the gap, an
  ambiguous one (the fall-back hour) as its first occurrence. Adjacent or overlapping
  openings merge, so 09-13 + 13-18 accept a 12-14 booking, and 20:00-24:00 Monday +
  00:00-02:00 Tuesday accept one across midnight.
- **Cost** = hourly rate (integer minor units) x duration in whole minutes / 60, rounded
  half up to the minor unit: `(rate * minutes + 30) // 60`. Reservations start and end on
  whole minutes, last 15 minutes to 24 hours.
- **Cancellation policy** (refund of the total cost): by the space owner or an admin,
  always a full refund; by the tutor/student/booker, a full refund when cancelled at least
  24 h before the start, 50 % (rounded down to the minor unit) when less than 24 h before
  the start, nothing once the reservation has started.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar

from services.kit.errors import ValidationError
from services.kit.invitations import InvitationStatus

T = TypeVar("T")

# -- limits ---------------------------------------------------------------------------------

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_ADDRESS = 500
MAX_CAPACITY = 10_000
MAX_FEATURE_DESCRIPTION = 500
MAX_WEEKLY_SLOTS = 100
MAX_EXCEPTIONS = 200
MAX_EXCEPTION_DAYS = 366
MAX_NOTE = 500
MAX_CERT_FIELD = 200
MAX_SUBJECT = 200
MAX_COMMENT = 2000
MAX_REASON = 500
MAX_REQUEST_ID = 100
MIN_RESERVATION = timedelta(minutes=15)
MAX_RESERVATION = timedelta(hours=24)
MAX_BOOKING_HORIZON = timedelta(days=366)
MAX_AVAILABILITY_WINDOW = timedelta(days=31)
FULL_REFUND_NOTICE = timedelta(hours=24)
PARTIAL_REFUND_PERCENT = 50
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# The one name both engines report for an overlapping active reservation: the PostgreSQL
# exclusion constraint, and the message of the SQLite trigger's RAISE(ABORT, ...).
NO_OVERLAP_CONSTRAINT = "ex_reservations_no_overlap"


class VerificationStatus(enum.StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


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


class TutorSessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ExceptionKind(enum.StrEnum):
    CLOSED = "closed"
    EXTRA = "extra"


# -- value types ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    currency: str
    amount_minor: int

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "amount_minor": self.amount_minor}


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class AccessibilityFeature:
    feature_type: str  # proto enum member name, e.g. "WHEELCHAIR_ACCESS"
    description: str


@dataclass(frozen=True)
class WeeklySlot:
    weekday: int  # ISO: 1 = Monday ... 7 = Sunday
    start: time
    end: time | None  # None = 24:00

    def to_json(self) -> dict[str, Any]:
        return {"weekday": self.weekday, "start": hhmm(self.start), "end": hhmm(self.end)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> WeeklySlot:
        return WeeklySlot(int(data["weekday"]), _parse_hhmm_raw(data["start"]), _end(data["end"]))


@dataclass(frozen=True)
class AvailabilityException:
    kind: ExceptionKind
    start_date: date
    end_date: date
    start: time | None = None  # EXTRA only
    end: time | None = None  # EXTRA only; None with start set = 24:00
    note: str = ""

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "start": hhmm(self.start) if self.start is not None else "",
            "end": hhmm(self.end) if self.kind is ExceptionKind.EXTRA else "",
            "note": self.note,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> AvailabilityException:
        kind = ExceptionKind(data["kind"])
        return AvailabilityException(
            kind=kind,
            start_date=date.fromisoformat(data["start_date"]),
            end_date=date.fromisoformat(data["end_date"]),
            start=_parse_hhmm_raw(data["start"]) if data.get("start") else None,
            end=_end(data["end"]) if kind is ExceptionKind.EXTRA else None,
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class Availability:
    weekly: tuple[WeeklySlot, ...] = ()
    exceptions: tuple[AvailabilityException, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "weekly": [s.to_json() for s in self.weekly],
            "exceptions": [e.to_json() for e in self.exceptions],
        }

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> Availability:
        if not data:
            return Availability()
        return Availability(
            weekly=tuple(WeeklySlot.from_json(s) for s in data.get("weekly", [])),
            exceptions=tuple(
                AvailabilityException.from_json(e) for e in data.get("exceptions", [])
            ),
        )


@dataclass(frozen=True)
class Certification:
    id: str
    space_id: str
    name: str
    issuer: str
    reference: str
    valid_until: datetime | None
    child_protection: bool = False
    attested_by: str = ""
    attested_at: datetime | None = None
    anchor_tx_hash: str = ""
    created_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or self.valid_until > now

    @property
    def attested(self) -> bool:
        return bool(self.attested_by)


@dataclass(frozen=True)
class RatingSummary:
    count: int = 0
    overall_sum: int = 0
    safety_sum: int = 0
    cleanliness_sum: int = 0
    accessibility_sum: int = 0

    def average(self, total: int) -> float:
        return round(total / self.count, 2) if self.count else 0.0


@dataclass(frozen=True)
class Space:
    id: str
    owner_id: str
    name: str
    description: str
    address: str
    geo: GeoPoint | None
    time_zone: str
    capacity: int
    amenities: tuple[str, ...]
    accessibility_features: tuple[AccessibilityFeature, ...]
    hourly_rate: Money
    availability: Availability
    verification_status: VerificationStatus
    rating: RatingSummary
    created_at: datetime
    updated_at: datetime
    certifications: tuple[Certification, ...] = ()

    @property
    def verified(self) -> bool:
        return self.verification_status is VerificationStatus.VERIFIED

    def child_safe(self, now: datetime) -> bool:
        """Verified and holding an attested, unexpired child protection certification."""
        return self.verified and any(
            c.attested and c.child_protection and c.valid_at(now) for c in self.certifications
        )


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
class TutorSession:
    id: str
    tutor_id: str
    student_id: str
    space_id: str
    reservation_id: str
    start_time: datetime
    end_time: datetime
    subject: str
    class_id: str
    status: TutorSessionStatus
    created_at: datetime
    learning_session_id: str = ""
    student_invitation: InvitationStatus | None = None


@dataclass(frozen=True)
class SpaceRating:
    id: str
    space_id: str
    rater_id: str
    reservation_id: str
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T] = field(default_factory=tuple)
    next_page_token: str = ""


# -- validation helpers ---------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def hhmm(value: time | None) -> str:
    return "24:00" if value is None else value.strftime("%H:%M")


def _parse_hhmm_raw(text: str) -> time:
    match = _HHMM.match(text)
    if not match:
        raise ValueError(text)
    return time(int(match.group(1)), int(match.group(2)))


def _end(text: str) -> time | None:
    return None if text == "24:00" else _parse_hhmm_raw(text)


def parse_local_time(text: str, field_path: str, *, allow_24: bool = False) -> time | None:
    """'HH:MM' (24 h); with allow_24, '24:00' (returned as None) for the end of the day."""
    if allow_24 and text == "24:00":
        return None
    if not text:
        raise ValidationError(field_path, "is required")
    try:
        return _parse_hhmm_raw(text)
    except ValueError:
        raise ValidationError(field_path, 'must be a local time "HH:MM" (24 h)') from None


def parse_local_date(text: str, field_path: str) -> date:
    if not text:
        raise ValidationError(field_path, "is required")
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        raise ValidationError(field_path, 'must be a local date "YYYY-MM-DD"')
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(field_path, 'must be a local date "YYYY-MM-DD"') from None


def _minutes(value: time | None) -> int:
    return 24 * 60 if value is None else value.hour * 60 + value.minute


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str, field_path: str) -> zoneinfo.ZoneInfo:
    if not name:
        raise ValidationError(field_path, "is required")
    if name not in _zones():
        raise ValidationError(field_path, "must be an IANA time zone name, e.g. Europe/Madrid")
    return zoneinfo.ZoneInfo(name)


def validate_text(
    value: str, field_path: str, *, maximum: int, required: bool = False, strip: bool = True
) -> str:
    text = value.strip() if strip else value
    if required and not text:
        raise ValidationError(field_path, "is required")
    if len(text) > maximum:
        raise ValidationError(field_path, f"must be at most {maximum} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise ValidationError(field_path, "must not contain control characters")
    return text


def validate_capacity(value: int, field_path: str) -> int:
    if not 1 <= value <= MAX_CAPACITY:
        raise ValidationError(field_path, f"must be between 1 and {MAX_CAPACITY}")
    return value


def validate_money(currency: str, amount_minor: int, field_path: str) -> Money:
    if not currency:
        raise ValidationError(f"{field_path}.currency_code", "is required")
    if not _CURRENCY.match(currency):
        raise ValidationError(
            f"{field_path}.currency_code", "must be a 3-letter ISO 4217 code, e.g. EUR"
        )
    if amount_minor < 0:
        raise ValidationError(f"{field_path}.amount_minor", "must not be negative")
    if amount_minor > 10**12:
        raise ValidationError(f"{field_path}.amount_minor", "is too large")
    return Money(currency, amount_minor)


def validate_geo(latitude: float, longitude: float, field_path: str) -> GeoPoint:
    if not math.isfinite(latitude) or not -90 <= latitude <= 90:
        raise ValidationError(f"{field_path}.latitude", "must be between -90 and 90")
    if not math.isfinite(longitude) or not -180 <= longitude <= 180:
        raise ValidationError(f"{field_path}.longitude", "must be between -180 and 180")
    return GeoPoint(latitude, longitude)


def validate_request_id(value: str, field_path: str = "request_id") -> str:
    if len(value) > MAX_REQUEST_ID:
        raise ValidationError(field_path, f"must be at most {MAX_REQUEST_ID} characters")
    return value


def validate_accessibility(
    features: Iterable[AccessibilityFeature], field_path: str
) -> tuple[AccessibilityFeature, ...]:
    seen: set[str] = set()
    result = []
    for index, feature in enumerate(features):
        path = f"{field_path}[{index}]"
        if feature.feature_type in seen:
            raise ValidationError(f"{path}.feature_type", "is listed twice")
        seen.add(feature.feature_type)
        description = validate_text(
            feature.description, f"{path}.description", maximum=MAX_FEATURE_DESCRIPTION
        )
        result.append(AccessibilityFeature(feature.feature_type, description))
    return tuple(result)


def validate_rating_score(value: int, field_path: str) -> int:
    if not 1 <= value <= 5:
        raise ValidationError(field_path, "must be between 1 and 5")
    return value


def validate_window(
    start: datetime | None,
    end: datetime | None,
    field_path: str,
    *,
    maximum: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """A half-open [start, end) window; both required (unset timestamps arrive as None)."""
    if start is None:
        raise ValidationError(f"{field_path}.start_time", "is required")
    if end is None:
        raise ValidationError(f"{field_path}.end_time", "is required")
    if end <= start:
        raise ValidationError(f"{field_path}.end_time", "must be after start_time")
    if maximum is not None and end - start > maximum:
        raise ValidationError(
            f"{field_path}.end_time", f"window must be at most {maximum.days} days"
        )
    return start.astimezone(UTC), end.astimezone(UTC)


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


# -- availability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawWeeklySlot:
    weekday: int  # 0 = unspecified
    start_time: str
    end_time: str


@dataclass(frozen=True)
class RawException:
    kind: ExceptionKind | None  # None = unspecified
    start_date: str
    end_date: str
    start_time: str
    end_time: str
    note: str


def validate_availability(
    weekly: Sequence[RawWeeklySlot], exceptions: Sequence[RawException], field_path: str
) -> Availability:
    if len(weekly) > MAX_WEEKLY_SLOTS:
        raise ValidationError(f"{field_path}.weekly", f"at most {MAX_WEEKLY_SLOTS} slots")
    if len(exceptions) > MAX_EXCEPTIONS:
        raise ValidationError(f"{field_path}.exceptions", f"at most {MAX_EXCEPTIONS} exceptions")
    slots: list[WeeklySlot] = []
    for index, raw in enumerate(weekly):
        path = f"{field_path}.weekly[{index}]"
        if not 1 <= raw.weekday <= 7:
            raise ValidationError(f"{path}.weekday", "is required (MONDAY..SUNDAY)")
        start = parse_local_time(raw.start_time, f"{path}.start_time")
        assert start is not None
        end = parse_local_time(raw.end_time, f"{path}.end_time", allow_24=True)
        if _minutes(end) <= _minutes(start):
            raise ValidationError(f"{path}.end_time", "must be after start_time")
        slot = WeeklySlot(raw.weekday, start, end)
        for other_index, other in enumerate(slots):
            if (
                other.weekday == slot.weekday
                and _minutes(other.start) < _minutes(slot.end)
                and _minutes(slot.start) < _minutes(other.end)
            ):
                raise ValidationError(path, f"overlaps weekly[{other_index}]")
        slots.append(slot)
    found: list[AvailabilityException] = []
    for index, raw_exc in enumerate(exceptions):
        path = f"{field_path}.exceptions[{index}]"
        if raw_exc.kind is None:
            raise ValidationError(f"{path}.kind", "is required (CLOSED or EXTRA)")
        start_date = parse_local_date(raw_exc.start_date, f"{path}.start_date")
        end_date = parse_local_date(raw_exc.end_date, f"{path}.end_date")
        if end_date < start_date:
            raise ValidationError(f"{path}.end_date", "must not be before start_date")
        if (end_date - start_date).days >= MAX_EXCEPTION_DAYS:
            raise ValidationError(
                f"{path}.end_date", f"ranges span at most {MAX_EXCEPTION_DAYS} days"
            )
        note = validate_text(raw_exc.note, f"{path}.note", maximum=MAX_NOTE)
        if raw_exc.kind is ExceptionKind.CLOSED:
            if raw_exc.start_time or raw_exc.end_time:
                raise ValidationError(f"{path}.start_time", "CLOSED exceptions take no hours")
            found.append(
                AvailabilityException(ExceptionKind.CLOSED, start_date, end_date, note=note)
            )
            continue
        start = parse_local_time(raw_exc.start_time, f"{path}.start_time")
        end = parse_local_time(raw_exc.end_time, f"{path}.end_time", allow_24=True)
        if _minutes(end) <= _minutes(start):
            raise ValidationError(f"{path}.end_time", "must be after start_time")
        found.append(
            AvailabilityException(ExceptionKind.EXTRA, start_date, end_date, start, end, note)
        )
    return Availability(tuple(slots), tuple(found))


Interval = tuple[datetime, datetime]


def _instant(day: date, value: time | None, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant of local wall time `value` on `day` (None = 24:00 = next midnight).
    fold=0: nonexistent times use the offset before the gap, ambiguous ones the first
    occurrence."""
    if value is None:
        day, value = day + timedelta(days=1), time(0, 0)
    return datetime.combine(day, value, tzinfo=zone).astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of half-open intervals, ordered; touching intervals merge."""
    result: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if result and start <= result[-1][1]:
            if end > result[-1][1]:
                result[-1] = (result[-1][0], end)
        else:
            result.append((start, end))
    return result


def opening_intervals(
    availability: Availability, time_zone: str, start: datetime, end: datetime
) -> list[Interval]:
    """The space's openings (UTC, merged) that intersect [start, end), not clipped."""
    zone = zoneinfo.ZoneInfo(time_zone)
    # Local dates that can hold an opening touching the window (a day either side for
    # offsets and slots running to 24:00).
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    raw: list[Interval] = []
    day = first
    while day <= last:
        closed = any(
            e.kind is ExceptionKind.CLOSED and e.covers(day) for e in availability.exceptions
        )
        if not closed:
            for slot in availability.weekly:
                if slot.weekday == day.isoweekday():
                    raw.append((_instant(day, slot.start, zone), _instant(day, slot.end, zone)))
            for exc in availability.exceptions:
                if exc.kind is ExceptionKind.EXTRA and exc.covers(day):
                    assert exc.start is not None
                    raw.append((_instant(day, exc.start, zone), _instant(day, exc.end, zone)))
        day += timedelta(days=1)
    return [(s, e) for s, e in merge(raw) if s < end and start < e]


def is_open_for(availability: Availability, time_zone: str, start: datetime, end: datetime) -> bool:
    """True when the whole [start, end) lies inside one (merged) opening."""
    return any(
        s <= start and end <= e for s, e in opening_intervals(availability, time_zone, start, end)
    )


def free_intervals(
    availability: Availability,
    time_zone: str,
    start: datetime,
    end: datetime,
    booked: Iterable[Interval],
) -> list[Interval]:
    """Openings within [start, end) minus the booked intervals: ordered, non-overlapping."""
    busy = merge(booked)
    result: list[Interval] = []
    for open_start, open_end in opening_intervals(availability, time_zone, start, end):
        cursor, stop = max(open_start, start), min(open_end, end)
        for busy_start, busy_end in busy:
            if busy_end <= cursor or busy_start >= stop:
                continue
            if busy_start > cursor:
                result.append((cursor, busy_start))
            cursor = max(cursor, busy_end)
        if cursor < stop:
            result.append((cursor, stop))
    return result


# -- money rules ----------------------------------------------------------------------------


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


# -- search ---------------------------------------------------------------------------------


def distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle (haversine) distance on a 6371 km sphere."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class SpaceFilter:
    query_words: tuple[str, ...] = ()
    near: GeoPoint | None = None
    radius_km: float = 0.0
    window: Interval | None = None
    min_capacity: int = 0
    amenities: frozenset[str] = frozenset()
    accessibility: frozenset[str] = frozenset()
    child_safe_only: bool = False
    verified_only: bool = False
    max_hourly_rate: Money | None = None
    owner_id: str = ""

    def matches_static(self, space: Space, now: datetime) -> bool:
        """Every filter except the window's bookings (which need the reservations)."""
        if self.query_words:
            haystack = f"{space.name}\n{space.description}\n{space.address}".casefold()
            if not all(word in haystack for word in self.query_words):
                return False
        if self.near is not None and (
            space.geo is None or distance_km(self.near, space.geo) > self.radius_km
        ):
            return False
        if not self.amenities <= set(space.amenities):
            return False
        if not self.accessibility <= {f.feature_type for f in space.accessibility_features}:
            return False
        if self.child_safe_only and not space.child_safe(now):
            return False
        return self.window is None or is_open_for(space.availability, space.time_zone, *self.window)


# -- page tokens ----------------------------------------------------------------------------


def page_size(requested: int, field_path: str = "page_size") -> int:
    if requested < 0:
        raise ValidationError(field_path, "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode_cursor(when: datetime, row_id: str) -> str:
    raw = json.dumps([when.astimezone(UTC).isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, field_path: str = "page_token") -> tuple[datetime, str] | None:
    """Keyset cursor: the (sort time, id) of the last item of the previous page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when_text, row_id = json.loads(raw)
        when = datetime.fromisoformat(when_text)
        if not isinstance(row_id, str) or when.tzinfo is None:
            raise ValueError(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValidationError(field_path, "malformed page token") from exc
    return when, row_id
