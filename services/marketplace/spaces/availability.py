"""Space availability: a weekly schedule of local "HH:MM" slots in the space's IANA time
zone plus dated exceptions, and the openings and free intervals it gives in a window.
Plain types and rules, no I/O.

- CLOSED exceptions win over everything on their dates; EXTRA ones add openings.
- Local wall times become instants with `zoneinfo` (fold=0): a wall time that does not
  exist (the spring-forward gap) is read with the offset before the gap, an ambiguous one
  (the fall-back hour) as its first occurrence.
- Adjacent or overlapping openings merge, so 09-13 + 13-18 accept a 12-14 booking, and
  20:00-24:00 Monday + 00:00-02:00 Tuesday accept one across midnight.
"""

from __future__ import annotations

import enum
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.kit.errors import ValidationError
from services.marketplace.common.domain import validate_text

MAX_WEEKLY_SLOTS = 100
MAX_EXCEPTIONS = 200
MAX_EXCEPTION_DAYS = 366
MAX_NOTE = 500
MAX_AVAILABILITY_WINDOW = timedelta(days=31)


class ExceptionKind(enum.StrEnum):
    CLOSED = "closed"
    EXTRA = "extra"


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


# -- local times -------------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


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


# -- openings ----------------------------------------------------------------------------


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
