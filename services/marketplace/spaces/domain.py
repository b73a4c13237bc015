"""Learning spaces: what a space is, the rules for its fields and the search filter.
Plain types and rules, no I/O."""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from services.kit.errors import ValidationError
from services.marketplace.common.domain import Money, validate_text
from services.marketplace.ratings.domain import RatingSummary
from services.marketplace.spaces.availability import Availability, Interval, is_open_for
from services.marketplace.verification.domain import Certification, VerificationStatus

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_ADDRESS = 500
MAX_CAPACITY = 10_000
MAX_FEATURE_DESCRIPTION = 500


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class AccessibilityFeature:
    feature_type: str  # proto enum member name, e.g. "WHEELCHAIR_ACCESS"
    description: str


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
class SpaceInput:
    name: str
    description: str
    address: str
    geo: GeoPoint | None
    time_zone: str
    capacity: int
    amenities: tuple[str, ...]
    accessibility_features: tuple[AccessibilityFeature, ...]
    rate_currency: str
    rate_minor: int
    availability: Availability
    request_id: str = ""


@dataclass(frozen=True)
class SpaceUpdate:
    name: str | None = None
    description: str | None = None
    address: str | None = None
    geo: GeoPoint | None = None
    time_zone: str | None = None
    capacity: int | None = None
    amenities: tuple[str, ...] | None = None
    accessibility_features: tuple[AccessibilityFeature, ...] | None = None
    hourly_rate: tuple[str, int] | None = None


# -- validation --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str, field_path: str) -> zoneinfo.ZoneInfo:
    if not name:
        raise ValidationError(field_path, "is required")
    if name not in _zones():
        raise ValidationError(field_path, "must be an IANA time zone name, e.g. Europe/Madrid")
    return zoneinfo.ZoneInfo(name)


def validate_capacity(value: int, field_path: str) -> int:
    if not 1 <= value <= MAX_CAPACITY:
        raise ValidationError(field_path, f"must be between 1 and {MAX_CAPACITY}")
    return value


def validate_geo(latitude: float, longitude: float, field_path: str) -> GeoPoint:
    if not math.isfinite(latitude) or not -90 <= latitude <= 90:
        raise ValidationError(f"{field_path}.latitude", "must be between -90 and 90")
    if not math.isfinite(longitude) or not -180 <= longitude <= 180:
        raise ValidationError(f"{field_path}.longitude", "must be between -180 and 180")
    return GeoPoint(latitude, longitude)


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


# -- search ------------------------------------------------------------------------------


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
