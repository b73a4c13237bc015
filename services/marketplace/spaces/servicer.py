"""gRPC: space RPCs (create, update, get, search, availability), decoding their requests
and encoding a space (with its certifications and rating summary)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import betterproto

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import ValidationError
from services.marketplace.common.domain import Money, validate_money, validate_window
from services.marketplace.common.servicer import (
    known,
    known_names,
    money_to_pb,
    time_from_pb,
)
from services.marketplace.spaces.availability import (
    Availability,
    ExceptionKind,
    RawException,
    RawWeeklySlot,
    hhmm,
    validate_availability,
)
from services.marketplace.spaces.domain import (
    AccessibilityFeature,
    GeoPoint,
    Space,
    SpaceFilter,
    SpaceInput,
    SpaceUpdate,
    validate_geo,
)
from services.marketplace.verification.domain import Certification, VerificationStatus

if TYPE_CHECKING:
    from services.marketplace.service import MarketplaceService

_TO_PB_VERIFICATION = {v: pb.VerificationStatus.from_string(v.name) for v in VerificationStatus}
_EXCEPTION_KINDS = {
    int(pb.AvailabilityExceptionKind.CLOSED): ExceptionKind.CLOSED,
    int(pb.AvailabilityExceptionKind.EXTRA): ExceptionKind.EXTRA,
}


class SpaceEncoding:
    service: MarketplaceService

    def _space(self, space: Space) -> pb.LearningSpace:
        return space_to_pb(space, self.service.clock.now())


class SpacesServicer(SpaceEncoding):
    async def create_space(
        self, create_space_request: pb.CreateSpaceRequest
    ) -> pb.CreateSpaceResponse:
        caller = current_principal()
        r = create_space_request
        space = await self.service.spaces.create_space(
            caller,
            SpaceInput(
                name=r.name,
                description=r.description,
                address=r.address,
                geo=geo_from_pb(r.geo, "space.geo"),
                time_zone=r.time_zone,
                capacity=r.capacity,
                amenities=amenities_from_pb(r.amenities, "space.amenities"),
                accessibility_features=features_from_pb(
                    r.accessibility_features, "space.accessibility_features"
                ),
                rate_currency=r.hourly_rate.currency_code,
                rate_minor=r.hourly_rate.amount_minor,
                availability=availability_from_pb(r.availability, "space.availability"),
                request_id=r.request_id,
            ),
        )
        return pb.CreateSpaceResponse(space=self._space(space))

    async def update_space(
        self, update_space_request: pb.UpdateSpaceRequest
    ) -> pb.UpdateSpaceResponse:
        caller = current_principal()
        r = update_space_request
        rate = None
        if betterproto.serialized_on_wire(r.hourly_rate):
            rate = (r.hourly_rate.currency_code, r.hourly_rate.amount_minor)
        space = await self.service.spaces.update_space(
            caller,
            r.space_id,
            SpaceUpdate(
                name=r.name,
                description=r.description,
                address=r.address,
                geo=geo_from_pb(r.geo, "space.geo"),
                time_zone=r.time_zone,
                capacity=r.capacity,
                amenities=amenities_from_pb(r.amenities, "space.amenities")
                if r.update_amenities
                else None,
                accessibility_features=features_from_pb(
                    r.accessibility_features, "space.accessibility_features"
                )
                if r.update_accessibility_features
                else None,
                hourly_rate=rate,
            ),
        )
        return pb.UpdateSpaceResponse(space=self._space(space))

    async def get_space(self, get_space_request: pb.GetSpaceRequest) -> pb.GetSpaceResponse:
        space = await self.service.spaces.get_space(get_space_request.space_id)
        return pb.GetSpaceResponse(space=self._space(space))

    async def search_spaces(
        self, search_spaces_request: pb.SearchSpacesRequest
    ) -> pb.SearchSpacesResponse:
        r = search_spaces_request
        near = geo_from_pb(r.near, "near")
        if near is not None and not r.radius_km > 0:
            raise ValidationError("radius_km", "must be positive when near is given")
        if r.radius_km < 0 or r.radius_km > 20_000:
            raise ValidationError("radius_km", "must be between 0 and 20000")
        window = None
        if betterproto.serialized_on_wire(r.window):
            window = validate_window(
                time_from_pb(r.window.start_time), time_from_pb(r.window.end_time), "window"
            )
        max_rate: Money | None = None
        if betterproto.serialized_on_wire(r.max_hourly_rate):
            max_rate = validate_money(
                r.max_hourly_rate.currency_code, r.max_hourly_rate.amount_minor, "max_hourly_rate"
            )
        if len(r.query) > 200:
            raise ValidationError("query", "must be at most 200 characters")
        spec = SpaceFilter(
            query_words=tuple(w.casefold() for w in r.query.split()),
            near=near,
            radius_km=r.radius_km,
            window=window,
            min_capacity=r.min_capacity,
            amenities=frozenset(amenities_from_pb(r.amenities, "amenities")),
            accessibility=frozenset(accessibility_from_pb(r.accessibility, "accessibility")),
            child_safe_only=r.child_safe_only,
            verified_only=r.verified_only,
            max_hourly_rate=max_rate,
            owner_id=r.owner_id,
        )
        page = await self.service.spaces.search_spaces(spec, r.page_size, r.page_token)
        return pb.SearchSpacesResponse(
            spaces=[self._space(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def set_availability(
        self, set_availability_request: pb.SetAvailabilityRequest
    ) -> pb.SetAvailabilityResponse:
        caller = current_principal()
        r = set_availability_request
        availability = availability_from_pb(r.availability, "availability")
        space = await self.service.spaces.set_availability(caller, r.space_id, availability)
        return pb.SetAvailabilityResponse(space=self._space(space))

    async def get_space_availability(
        self, get_space_availability_request: pb.GetSpaceAvailabilityRequest
    ) -> pb.GetSpaceAvailabilityResponse:
        r = get_space_availability_request
        free = await self.service.spaces.space_availability(
            r.space_id, time_from_pb(r.window.start_time), time_from_pb(r.window.end_time)
        )
        return pb.GetSpaceAvailabilityResponse(
            free=[pb.TimeWindow(start_time=s, end_time=e) for s, e in free]
        )


# -- decoding -------------------------------------------------------------------------------


def geo_from_pb(value: pb.GeoPoint, field_path: str) -> GeoPoint | None:
    if not betterproto.serialized_on_wire(value):
        return None
    return validate_geo(value.latitude, value.longitude, field_path)


def amenities_from_pb(values: list[pb.Amenity], field_path: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(known_names(values, field_path, "amenity")))


def accessibility_from_pb(values: list[pb.AccessibilityType], field_path: str) -> tuple[str, ...]:
    return tuple(known_names(values, field_path, "accessibility type"))


def features_from_pb(
    values: list[pb.AccessibilityFeature], field_path: str
) -> tuple[AccessibilityFeature, ...]:
    result = []
    for index, value in enumerate(values):
        name = known(value.feature_type)
        if name is None:
            raise ValidationError(
                f"{field_path}[{index}].feature_type", "must be a known accessibility type"
            )
        result.append(AccessibilityFeature(name, value.description))
    return tuple(result)


def availability_from_pb(value: pb.Availability, field_path: str) -> Availability:
    return validate_availability(
        [
            RawWeeklySlot(int(s.weekday) if known(s.weekday) else 0, s.start_time, s.end_time)
            for s in value.weekly
        ],
        [
            RawException(
                _EXCEPTION_KINDS.get(int(e.kind)),
                e.start_date,
                e.end_date,
                e.start_time,
                e.end_time,
                e.note,
            )
            for e in value.exceptions
        ],
        field_path,
    )


# -- encoding -------------------------------------------------------------------------------


def certification_to_pb(cert: Certification) -> pb.SafetyCertification:
    message = pb.SafetyCertification(
        id=cert.id,
        name=cert.name,
        issuer=cert.issuer,
        reference=cert.reference,
        attested_by=cert.attested_by,
        anchor_tx_hash=cert.anchor_tx_hash,
    )
    if cert.valid_until is not None:
        message.valid_until = cert.valid_until
    if cert.attested_at is not None:
        message.attested_at = cert.attested_at
    return message


def summary_to_pb(space: Space) -> pb.SpaceRatingSummary:
    r = space.rating
    return pb.SpaceRatingSummary(
        overall=r.average(r.overall_sum),
        safety=r.average(r.safety_sum),
        cleanliness=r.average(r.cleanliness_sum),
        accessibility=r.average(r.accessibility_sum),
        rating_count=r.count,
    )


def availability_to_pb(availability: Availability) -> pb.Availability:
    return pb.Availability(
        weekly=[
            pb.WeeklySlot(
                weekday=pb.Weekday(s.weekday), start_time=hhmm(s.start), end_time=hhmm(s.end)
            )
            for s in availability.weekly
        ],
        exceptions=[
            pb.AvailabilityException(
                kind=pb.AvailabilityExceptionKind.from_string(e.kind.name),
                start_date=e.start_date.isoformat(),
                end_date=e.end_date.isoformat(),
                start_time=hhmm(e.start) if e.kind is ExceptionKind.EXTRA else "",
                end_time=hhmm(e.end) if e.kind is ExceptionKind.EXTRA else "",
                note=e.note,
            )
            for e in availability.exceptions
        ],
    )


def space_to_pb(space: Space, now: datetime) -> pb.LearningSpace:
    message = pb.LearningSpace(
        id=space.id,
        owner_id=space.owner_id,
        name=space.name,
        description=space.description,
        address=space.address,
        time_zone=space.time_zone,
        capacity=space.capacity,
        amenities=[pb.Amenity.from_string(a) for a in space.amenities],
        safety_certifications=[certification_to_pb(c) for c in space.certifications],
        accessibility_features=[
            pb.AccessibilityFeature(
                feature_type=pb.AccessibilityType.from_string(f.feature_type),
                description=f.description,
            )
            for f in space.accessibility_features
        ],
        hourly_rate=money_to_pb(space.hourly_rate),
        availability=availability_to_pb(space.availability),
        verified=space.verified,
        verification_status=_TO_PB_VERIFICATION[space.verification_status],
        child_safe=space.child_safe(now),
        rating_summary=summary_to_pb(space),
        created_at=space.created_at,
        updated_at=space.updated_at,
    )
    if space.geo is not None:
        message.geo = pb.GeoPoint(latitude=space.geo.latitude, longitude=space.geo.longitude)
    return message
