"""Learning spaces over GraphQL: the space, its availability and search (public reads),
listing and editing a space."""

from __future__ import annotations

import enum
from datetime import datetime

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.marketplace.common import (
    Money,
    MoneyInput,
    TimeWindow,
    TimeWindowInput,
    enum_name,
    marketplace,
    pb_enums,
    signed_in,
    u32,
    when,
)
from services.api.keiko.marketplace import v1 as pb

# -- enums (member names are the proto's, without the prefix) ---------------------------------


@strawberry.enum(description="What a learning space offers.")
class Amenity(enum.Enum):
    WIFI = "WIFI"
    WHITEBOARD = "WHITEBOARD"
    PROJECTOR = "PROJECTOR"
    COMPUTERS = "COMPUTERS"
    PRINTER = "PRINTER"
    LIBRARY = "LIBRARY"
    LABORATORY = "LABORATORY"
    KITCHEN = "KITCHEN"
    PARKING = "PARKING"
    QUIET_ROOM = "QUIET_ROOM"
    PRIVATE_ROOM = "PRIVATE_ROOM"
    OUTDOOR_AREA = "OUTDOOR_AREA"
    AIR_CONDITIONING = "AIR_CONDITIONING"


@strawberry.enum
class AccessibilityType(enum.Enum):
    WHEELCHAIR_ACCESS = "WHEELCHAIR_ACCESS"
    STEP_FREE_ENTRANCE = "STEP_FREE_ENTRANCE"
    ELEVATOR = "ELEVATOR"
    ACCESSIBLE_RESTROOM = "ACCESSIBLE_RESTROOM"
    HEARING_LOOP = "HEARING_LOOP"
    BRAILLE_SIGNAGE = "BRAILLE_SIGNAGE"
    SCREEN_READER = "SCREEN_READER"
    HIGH_CONTRAST = "HIGH_CONTRAST"
    SIGN_LANGUAGE = "SIGN_LANGUAGE"
    CAPTIONS = "CAPTIONS"
    QUIET_SENSORY_SPACE = "QUIET_SENSORY_SPACE"


@strawberry.enum
class SpaceVerificationStatus(enum.Enum):
    UNVERIFIED = "UNVERIFIED"
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"


@strawberry.enum
class Weekday(enum.Enum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


@strawberry.enum
class AvailabilityExceptionKind(enum.Enum):
    CLOSED = "CLOSED"
    EXTRA = "EXTRA"


# -- objects ----------------------------------------------------------------------------------


@strawberry.type
class GeoPoint:
    latitude: float
    longitude: float


@strawberry.type
class AccessibilityFeature:
    feature_type: AccessibilityType
    description: str


@strawberry.type
class SafetyCertification:
    id: strawberry.ID
    name: str
    issuer: str
    reference: str
    valid_until: datetime | None
    attested_by: str | None = strawberry.field(description="Admin who checked it; null until.")
    attested_at: datetime | None
    anchor_tx_hash: str | None = strawberry.field(
        description="Transaction anchoring the attestation; null until the chain confirms."
    )

    @staticmethod
    def from_pb(c: pb.SafetyCertification) -> SafetyCertification:
        return SafetyCertification(
            id=strawberry.ID(c.id),
            name=c.name,
            issuer=c.issuer,
            reference=c.reference,
            valid_until=when(c.valid_until),
            attested_by=c.attested_by or None,
            attested_at=when(c.attested_at),
            anchor_tx_hash=c.anchor_tx_hash or None,
        )


@strawberry.type
class SpaceRatingSummary:
    overall: float
    safety: float
    cleanliness: float
    accessibility: float
    rating_count: int

    @staticmethod
    def from_pb(s: pb.SpaceRatingSummary) -> SpaceRatingSummary:
        return SpaceRatingSummary(
            overall=s.overall,
            safety=s.safety,
            cleanliness=s.cleanliness,
            accessibility=s.accessibility,
            rating_count=s.rating_count,
        )


@strawberry.type
class WeeklySlot:
    weekday: Weekday
    start_time: str = strawberry.field(description='Local "HH:MM".')
    end_time: str = strawberry.field(description='Local "HH:MM"; "24:00" is midnight.')


@strawberry.type
class AvailabilityException:
    kind: AvailabilityExceptionKind
    start_date: str
    end_date: str
    start_time: str | None
    end_time: str | None
    note: str


@strawberry.type
class Availability:
    weekly: list[WeeklySlot]
    exceptions: list[AvailabilityException]

    @staticmethod
    def from_pb(a: pb.Availability) -> Availability:
        return Availability(
            weekly=[
                WeeklySlot(
                    weekday=Weekday[enum_name(pb.Weekday(s.weekday))],
                    start_time=s.start_time,
                    end_time=s.end_time,
                )
                for s in a.weekly
            ],
            exceptions=[
                AvailabilityException(
                    kind=AvailabilityExceptionKind[enum_name(pb.AvailabilityExceptionKind(e.kind))],
                    start_date=e.start_date,
                    end_date=e.end_date,
                    start_time=e.start_time or None,
                    end_time=e.end_time or None,
                    note=e.note,
                )
                for e in a.exceptions
            ],
        )


@strawberry.type(description="A safe learning space listed on the marketplace.")
class LearningSpace:
    id: strawberry.ID
    owner_id: strawberry.ID
    name: str
    description: str
    address: str
    geo: GeoPoint | None
    time_zone: str
    capacity: int
    amenities: list[Amenity]
    safety_certifications: list[SafetyCertification]
    accessibility_features: list[AccessibilityFeature]
    hourly_rate: Money
    availability: Availability
    verified: bool
    verification_status: SpaceVerificationStatus
    child_safe: bool
    rating_summary: SpaceRatingSummary
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def from_pb(s: pb.LearningSpace) -> LearningSpace:
        geo = s.geo if betterproto.serialized_on_wire(s.geo) else None
        return LearningSpace(
            id=strawberry.ID(s.id),
            owner_id=strawberry.ID(s.owner_id),
            name=s.name,
            description=s.description,
            address=s.address,
            geo=GeoPoint(latitude=geo.latitude, longitude=geo.longitude)
            if geo is not None
            else None,
            time_zone=s.time_zone,
            capacity=s.capacity,
            amenities=[Amenity[enum_name(pb.Amenity(a))] for a in s.amenities],
            safety_certifications=[SafetyCertification.from_pb(c) for c in s.safety_certifications],
            accessibility_features=[
                AccessibilityFeature(
                    feature_type=AccessibilityType[enum_name(pb.AccessibilityType(f.feature_type))],
                    description=f.description,
                )
                for f in s.accessibility_features
            ],
            hourly_rate=Money.from_pb(s.hourly_rate),
            availability=Availability.from_pb(s.availability),
            verified=s.verified,
            verification_status=SpaceVerificationStatus[
                enum_name(pb.VerificationStatus(s.verification_status))
            ],
            child_safe=s.child_safe,
            rating_summary=SpaceRatingSummary.from_pb(s.rating_summary),
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


@strawberry.type
class SpacePage:
    spaces: list[LearningSpace]
    next_page_token: str | None


# -- inputs -----------------------------------------------------------------------------------


@strawberry.input
class GeoPointInput:
    latitude: float
    longitude: float

    def to_pb(self) -> pb.GeoPoint:
        return pb.GeoPoint(latitude=self.latitude, longitude=self.longitude)


@strawberry.input
class AccessibilityFeatureInput:
    feature_type: AccessibilityType
    description: str = ""

    def to_pb(self) -> pb.AccessibilityFeature:
        return pb.AccessibilityFeature(
            feature_type=pb.AccessibilityType.from_string(self.feature_type.value),
            description=self.description,
        )


@strawberry.input
class WeeklySlotInput:
    weekday: Weekday
    start_time: str
    end_time: str


@strawberry.input
class AvailabilityExceptionInput:
    kind: AvailabilityExceptionKind
    start_date: str
    end_date: str
    start_time: str = ""
    end_time: str = ""
    note: str = ""


@strawberry.input
class AvailabilityInput:
    weekly: list[WeeklySlotInput] = strawberry.field(default_factory=list)
    exceptions: list[AvailabilityExceptionInput] = strawberry.field(default_factory=list)

    def to_pb(self) -> pb.Availability:
        return pb.Availability(
            weekly=[
                pb.WeeklySlot(
                    weekday=pb.Weekday.from_string(s.weekday.value),
                    start_time=s.start_time,
                    end_time=s.end_time,
                )
                for s in self.weekly
            ],
            exceptions=[
                pb.AvailabilityException(
                    kind=pb.AvailabilityExceptionKind.from_string(e.kind.value),
                    start_date=e.start_date,
                    end_date=e.end_date,
                    start_time=e.start_time,
                    end_time=e.end_time,
                    note=e.note,
                )
                for e in self.exceptions
            ],
        )


@strawberry.input
class CreateSpaceInput:
    name: str
    address: str
    time_zone: str
    capacity: int
    hourly_rate: MoneyInput
    description: str = ""
    geo: GeoPointInput | None = None
    amenities: list[Amenity] = strawberry.field(default_factory=list)
    accessibility_features: list[AccessibilityFeatureInput] = strawberry.field(default_factory=list)
    availability: AvailabilityInput | None = None
    request_id: str = strawberry.field(default="", description="Makes retries safe.")


@strawberry.input(description="Only the fields given change.")
class UpdateSpaceInput:
    name: str | None = None
    description: str | None = None
    address: str | None = None
    geo: GeoPointInput | None = None
    time_zone: str | None = None
    capacity: int | None = None
    amenities: list[Amenity] | None = None
    accessibility_features: list[AccessibilityFeatureInput] | None = None
    hourly_rate: MoneyInput | None = None


@strawberry.input
class SpaceSearchInput:
    query: str = ""
    near: GeoPointInput | None = None
    radius_km: float = 0.0
    window: TimeWindowInput | None = strawberry.field(
        default=None, description="Only spaces open and unbooked for the whole window."
    )
    min_capacity: int = 0
    amenities: list[Amenity] = strawberry.field(default_factory=list)
    accessibility: list[AccessibilityType] = strawberry.field(default_factory=list)
    child_safe_only: bool = False
    verified_only: bool = False
    max_hourly_rate: MoneyInput | None = None
    owner_id: strawberry.ID | None = None


# -- operations -------------------------------------------------------------------------------


@strawberry.type
class SpacesQuery:
    @strawberry.field(description="One learning space (public).")
    async def space(self, info: Info, id: strawberry.ID) -> LearningSpace:
        response = await rpc(marketplace(info).get_space(pb.GetSpaceRequest(space_id=str(id))))
        return LearningSpace.from_pb(response.space)

    @strawberry.field(description="Spaces matching every given filter (public).")
    async def search_spaces(
        self,
        info: Info,
        filter: SpaceSearchInput | None = None,
        first: int = 20,
        after: str = "",
    ) -> SpacePage:
        f = filter or SpaceSearchInput()
        request = pb.SearchSpacesRequest(
            query=f.query,
            radius_km=f.radius_km,
            min_capacity=u32(f.min_capacity),
            amenities=pb_enums(pb.Amenity, f.amenities),
            accessibility=pb_enums(pb.AccessibilityType, f.accessibility),
            child_safe_only=f.child_safe_only,
            verified_only=f.verified_only,
            owner_id=str(f.owner_id or ""),
            page_size=first,
            page_token=after,
        )
        if f.near is not None:
            request.near = f.near.to_pb()
        if f.window is not None:
            request.window = f.window.to_pb()
        if f.max_hourly_rate is not None:
            request.max_hourly_rate = f.max_hourly_rate.to_pb()
        response = await rpc(marketplace(info).search_spaces(request))
        return SpacePage(
            spaces=[LearningSpace.from_pb(s) for s in response.spaces],
            next_page_token=response.next_page_token or None,
        )

    @strawberry.field(description="Free, bookable intervals of a space within a window.")
    async def space_availability(
        self, info: Info, space_id: strawberry.ID, window: TimeWindowInput
    ) -> list[TimeWindow]:
        response = await rpc(
            marketplace(info).get_space_availability(
                pb.GetSpaceAvailabilityRequest(space_id=str(space_id), window=window.to_pb())
            )
        )
        return [TimeWindow(start_time=w.start_time, end_time=w.end_time) for w in response.free]


@strawberry.type
class SpacesMutation:
    @strawberry.mutation(description="List a new learning space (role space_owner).")
    async def create_space(self, info: Info, input: CreateSpaceInput) -> LearningSpace:
        request = pb.CreateSpaceRequest(
            name=input.name,
            description=input.description,
            address=input.address,
            time_zone=input.time_zone,
            capacity=u32(input.capacity),
            amenities=pb_enums(pb.Amenity, input.amenities),
            accessibility_features=[f.to_pb() for f in input.accessibility_features],
            hourly_rate=input.hourly_rate.to_pb(),
            request_id=input.request_id,
        )
        if input.geo is not None:
            request.geo = input.geo.to_pb()
        if input.availability is not None:
            request.availability = input.availability.to_pb()
        response = await rpc(signed_in(info).create_space(request))
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Edit your space; an address change resets verification.")
    async def update_space(
        self, info: Info, space_id: strawberry.ID, input: UpdateSpaceInput
    ) -> LearningSpace:
        request = pb.UpdateSpaceRequest(
            space_id=str(space_id),
            name=input.name,
            description=input.description,
            address=input.address,
            time_zone=input.time_zone,
            capacity=u32(input.capacity) if input.capacity is not None else None,
        )
        if input.geo is not None:
            request.geo = input.geo.to_pb()
        if input.amenities is not None:
            request.amenities = pb_enums(pb.Amenity, input.amenities)
            request.update_amenities = True
        if input.accessibility_features is not None:
            request.accessibility_features = [f.to_pb() for f in input.accessibility_features]
            request.update_accessibility_features = True
        if input.hourly_rate is not None:
            request.hourly_rate = input.hourly_rate.to_pb()
        response = await rpc(signed_in(info).update_space(request))
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Replace your space's weekly schedule and exceptions.")
    async def set_space_availability(
        self, info: Info, space_id: strawberry.ID, availability: AvailabilityInput
    ) -> LearningSpace:
        response = await rpc(
            signed_in(info).set_availability(
                pb.SetAvailabilityRequest(space_id=str(space_id), availability=availability.to_pb())
            )
        )
        return LearningSpace.from_pb(response.space)
