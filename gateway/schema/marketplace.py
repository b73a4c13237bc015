"""The marketplace over GraphQL: learning spaces, availability, verification,
reservations, tutor sessions, space ratings, and the `reservationChanged` subscription.

Every resolver calls keiko.marketplace.v1.MarketplaceService over gRPC; none imports the
service's Python code. Public queries (space, searchSpaces, spaceAvailability,
spaceRatings) work without a token; everything else needs one. Lists page with
`first` / `after` (the service's opaque cursor) and return `nextPageToken`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import rpc, rpc_stream
from gateway.schema.invitations import InvitationStatus, status_from_pb
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _when(value: datetime) -> datetime | None:
    """Unset protobuf timestamps (the epoch) become null."""
    return None if value == _EPOCH else value


# -- enums (member names are the proto's, without the prefix) --------------------------------


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


@strawberry.enum(description="Safety conditions a reservation requires.")
class SafetyRequirement(enum.Enum):
    BACKGROUND_CHECKED_TUTOR = "BACKGROUND_CHECKED_TUTOR"
    GUARDIAN_PRESENT = "GUARDIAN_PRESENT"
    VISIBLE_ROOM = "VISIBLE_ROOM"
    STAFF_ON_SITE = "STAFF_ON_SITE"
    FIRST_AID_AVAILABLE = "FIRST_AID_AVAILABLE"


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


@strawberry.enum
class ReservationStatus(enum.Enum):
    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


@strawberry.enum
class RefundOutcome(enum.Enum):
    FULL_REFUND = "FULL_REFUND"
    PARTIAL_REFUND = "PARTIAL_REFUND"
    NO_REFUND = "NO_REFUND"


@strawberry.enum
class TutorSessionStatus(enum.Enum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class ReservationEventKind(enum.Enum):
    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


def _name(value: enum.Enum) -> str:
    """The member name of a protobuf enum value (unknown values have none: a KeyError)."""
    return str(value.name)


def _u32(value: int) -> int:
    """GraphQL Int is signed: clamp into uint32 so the service, not the encoder, rejects it."""
    return min(max(value, 0), 2**32 - 1)


# -- objects ----------------------------------------------------------------------------------


@strawberry.type(description="An amount in integer minor units (cents for EUR).")
class Money:
    currency_code: str
    amount_minor: int

    @staticmethod
    def from_pb(m: common_pb.Money) -> Money:
        return Money(currency_code=m.currency_code, amount_minor=m.amount_minor)


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
            valid_until=_when(c.valid_until),
            attested_by=c.attested_by or None,
            attested_at=_when(c.attested_at),
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
                    weekday=Weekday[_name(pb.Weekday(s.weekday))],
                    start_time=s.start_time,
                    end_time=s.end_time,
                )
                for s in a.weekly
            ],
            exceptions=[
                AvailabilityException(
                    kind=AvailabilityExceptionKind[_name(pb.AvailabilityExceptionKind(e.kind))],
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
            amenities=[Amenity[_name(pb.Amenity(a))] for a in s.amenities],
            safety_certifications=[SafetyCertification.from_pb(c) for c in s.safety_certifications],
            accessibility_features=[
                AccessibilityFeature(
                    feature_type=AccessibilityType[_name(pb.AccessibilityType(f.feature_type))],
                    description=f.description,
                )
                for f in s.accessibility_features
            ],
            hourly_rate=Money.from_pb(s.hourly_rate),
            availability=Availability.from_pb(s.availability),
            verified=s.verified,
            verification_status=SpaceVerificationStatus[
                _name(pb.VerificationStatus(s.verification_status))
            ],
            child_safe=s.child_safe,
            rating_summary=SpaceRatingSummary.from_pb(s.rating_summary),
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


@strawberry.type
class Cancellation:
    cancelled_by: strawberry.ID
    cancelled_at: datetime
    reason: str
    outcome: RefundOutcome
    refund: Money


@strawberry.type
class Reservation:
    id: strawberry.ID
    space_id: strawberry.ID
    tutor_id: strawberry.ID
    student_id: strawberry.ID | None
    start_time: datetime
    end_time: datetime
    status: ReservationStatus
    total_cost: Money
    safety_requirements: list[SafetyRequirement]
    cancellation: Cancellation | None
    tutor_session_id: strawberry.ID | None
    created_by: strawberry.ID
    created_at: datetime
    updated_at: datetime
    student_invitation: InvitationStatus | None = strawberry.field(
        description=(
            "The named student's answer to their invitation; null when nobody was "
            "invited (they booked it themselves). Completing needs ACCEPTED."
        )
    )

    @staticmethod
    def from_pb(r: pb.Reservation) -> Reservation:
        c = r.cancellation
        return Reservation(
            id=strawberry.ID(r.id),
            space_id=strawberry.ID(r.space_id),
            tutor_id=strawberry.ID(r.tutor_id),
            student_id=strawberry.ID(r.student_id) if r.student_id else None,
            start_time=r.start_time,
            end_time=r.end_time,
            status=ReservationStatus[_name(pb.ReservationStatus(r.status))],
            total_cost=Money.from_pb(r.total_cost),
            safety_requirements=[
                SafetyRequirement[_name(pb.SafetyRequirement(x))] for x in r.safety_requirements
            ],
            cancellation=Cancellation(
                cancelled_by=strawberry.ID(c.cancelled_by),
                cancelled_at=c.cancelled_at,
                reason=c.reason,
                outcome=RefundOutcome[_name(pb.RefundOutcome(c.outcome))],
                refund=Money.from_pb(c.refund),
            )
            if c.cancelled_by
            else None,
            tutor_session_id=strawberry.ID(r.tutor_session_id) if r.tutor_session_id else None,
            created_by=strawberry.ID(r.created_by),
            created_at=r.created_at,
            updated_at=r.updated_at,
            student_invitation=status_from_pb(r.student_invitation),
        )


@strawberry.type
class TutorSession:
    id: strawberry.ID
    tutor_id: strawberry.ID
    student_id: strawberry.ID
    space_id: strawberry.ID
    reservation_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    subject: str
    status: TutorSessionStatus
    learning_session_id: strawberry.ID | None
    created_at: datetime
    student_invitation: InvitationStatus | None = strawberry.field(
        description="The student's answer to their invitation; completing needs ACCEPTED."
    )

    @staticmethod
    def from_pb(s: pb.TutorSession) -> TutorSession:
        return TutorSession(
            id=strawberry.ID(s.id),
            tutor_id=strawberry.ID(s.tutor_id),
            student_id=strawberry.ID(s.student_id),
            space_id=strawberry.ID(s.space_id),
            reservation_id=strawberry.ID(s.reservation_id),
            start_time=s.start_time,
            end_time=s.end_time,
            subject=s.subject,
            status=TutorSessionStatus[_name(pb.TutorSessionStatus(s.status))],
            learning_session_id=(
                strawberry.ID(s.learning_session_id) if s.learning_session_id else None
            ),
            created_at=s.created_at,
            student_invitation=status_from_pb(s.student_invitation),
        )


@strawberry.type
class SpaceRating:
    id: strawberry.ID
    space_id: strawberry.ID
    rater_id: strawberry.ID
    reservation_id: strawberry.ID
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str
    created_at: datetime

    @staticmethod
    def from_pb(r: pb.SpaceRating) -> SpaceRating:
        return SpaceRating(
            id=strawberry.ID(r.id),
            space_id=strawberry.ID(r.space_id),
            rater_id=strawberry.ID(r.rater_id),
            reservation_id=strawberry.ID(r.reservation_id),
            overall=r.overall,
            safety=r.safety,
            cleanliness=r.cleanliness,
            accessibility=r.accessibility,
            comment=r.comment,
            created_at=r.created_at,
        )


@strawberry.type
class TimeWindow:
    start_time: datetime
    end_time: datetime


@strawberry.type
class SpacePage:
    spaces: list[LearningSpace]
    next_page_token: str | None


@strawberry.type
class ReservationPage:
    reservations: list[Reservation]
    next_page_token: str | None


@strawberry.type
class TutorSessionPage:
    sessions: list[TutorSession]
    next_page_token: str | None


@strawberry.type
class SpaceRatingPage:
    ratings: list[SpaceRating]
    next_page_token: str | None


@strawberry.type
class CertificationPayload:
    space: LearningSpace
    certification: SafetyCertification


@strawberry.type
class TutorSessionBooking:
    session: TutorSession
    reservation: Reservation


@strawberry.type
class SpaceRatingPayload:
    rating: SpaceRating
    summary: SpaceRatingSummary


@strawberry.type
class ReservationEvent:
    kind: ReservationEventKind
    reservation: Reservation


# -- inputs -----------------------------------------------------------------------------------


@strawberry.input
class MoneyInput:
    currency_code: str
    amount_minor: int

    def to_pb(self) -> common_pb.Money:
        return common_pb.Money(currency_code=self.currency_code, amount_minor=self.amount_minor)


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
class TimeWindowInput:
    start_time: datetime
    end_time: datetime

    def to_pb(self) -> pb.TimeWindow:
        return pb.TimeWindow(start_time=self.start_time, end_time=self.end_time)


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


@strawberry.input
class CreateReservationInput:
    space_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    tutor_id: strawberry.ID | None = strawberry.field(default=None, description="Default: you.")
    student_id: strawberry.ID | None = None
    safety_requirements: list[SafetyRequirement] = strawberry.field(default_factory=list)
    request_id: str = ""


@strawberry.input
class BookTutorSessionInput:
    space_id: strawberry.ID
    student_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    subject: str
    tutor_id: strawberry.ID | None = strawberry.field(default=None, description="Default: you.")
    class_id: strawberry.ID | None = None
    safety_requirements: list[SafetyRequirement] = strawberry.field(default_factory=list)
    request_id: str = ""


@strawberry.input
class AddCertificationInput:
    space_id: strawberry.ID
    name: str
    issuer: str
    reference: str = ""
    valid_until: datetime | None = None
    request_id: str = ""


@strawberry.input
class RateSpaceInput:
    space_id: strawberry.ID
    reservation_id: strawberry.ID
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str = ""


def _safety(values: list[SafetyRequirement]) -> list[pb.SafetyRequirement]:
    return [pb.SafetyRequirement.from_string(v.value) for v in values]


def marketplace(info: Info) -> pb.MarketplaceServiceStub:
    return info.context.client(pb.MarketplaceServiceStub)  # type: ignore[no-any-return]


# -- operations -------------------------------------------------------------------------------


@strawberry.type
class MarketplaceQuery:
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
            min_capacity=_u32(f.min_capacity),
            amenities=[pb.Amenity.from_string(a.value) for a in f.amenities],
            accessibility=[pb.AccessibilityType.from_string(a.value) for a in f.accessibility],
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

    @strawberry.field(description="Ratings of a space, newest first (public).")
    async def space_ratings(
        self, info: Info, space_id: strawberry.ID, first: int = 20, after: str = ""
    ) -> SpaceRatingPage:
        response = await rpc(
            marketplace(info).list_space_ratings(
                pb.ListSpaceRatingsRequest(
                    space_id=str(space_id), page_size=first, page_token=after
                )
            )
        )
        return SpaceRatingPage(
            ratings=[SpaceRating.from_pb(r) for r in response.ratings],
            next_page_token=response.next_page_token or None,
        )

    @strawberry.field(description="One reservation (its tutor, student or space owner).")
    async def reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        info.context.require_token()
        response = await rpc(
            marketplace(info).get_reservation(pb.GetReservationRequest(reservation_id=str(id)))
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.field(description="Reservations of a space you own, or your own.")
    async def reservations(
        self,
        info: Info,
        space_id: strawberry.ID | None = None,
        statuses: list[ReservationStatus] | None = None,
        window: TimeWindowInput | None = None,
        first: int = 20,
        after: str = "",
    ) -> ReservationPage:
        info.context.require_token()
        request = pb.ListReservationsRequest(
            space_id=str(space_id or ""),
            statuses=[pb.ReservationStatus.from_string(s.value) for s in statuses or []],
            page_size=first,
            page_token=after,
        )
        if window is not None:
            request.window = window.to_pb()
        response = await rpc(marketplace(info).list_reservations(request))
        return ReservationPage(
            reservations=[Reservation.from_pb(r) for r in response.reservations],
            next_page_token=response.next_page_token or None,
        )

    @strawberry.field(description="One tutor session (its tutor or student).")
    async def tutor_session(self, info: Info, id: strawberry.ID) -> TutorSession:
        info.context.require_token()
        response = await rpc(
            marketplace(info).get_tutor_session(pb.GetTutorSessionRequest(session_id=str(id)))
        )
        return TutorSession.from_pb(response.session)

    @strawberry.field(description="Tutor sessions, by start time (default: yours).")
    async def tutor_sessions(
        self,
        info: Info,
        tutor_id: strawberry.ID | None = None,
        student_id: strawberry.ID | None = None,
        space_id: strawberry.ID | None = None,
        statuses: list[TutorSessionStatus] | None = None,
        first: int = 20,
        after: str = "",
    ) -> TutorSessionPage:
        info.context.require_token()
        response = await rpc(
            marketplace(info).list_tutor_sessions(
                pb.ListTutorSessionsRequest(
                    tutor_id=str(tutor_id or ""),
                    student_id=str(student_id or ""),
                    space_id=str(space_id or ""),
                    statuses=[pb.TutorSessionStatus.from_string(s.value) for s in statuses or []],
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return TutorSessionPage(
            sessions=[TutorSession.from_pb(s) for s in response.sessions],
            next_page_token=response.next_page_token or None,
        )


@strawberry.type
class MarketplaceMutation:
    @strawberry.mutation(description="List a new learning space (role space_owner).")
    async def create_space(self, info: Info, input: CreateSpaceInput) -> LearningSpace:
        info.context.require_token()
        request = pb.CreateSpaceRequest(
            name=input.name,
            description=input.description,
            address=input.address,
            time_zone=input.time_zone,
            capacity=_u32(input.capacity),
            amenities=[pb.Amenity.from_string(a.value) for a in input.amenities],
            accessibility_features=[f.to_pb() for f in input.accessibility_features],
            hourly_rate=input.hourly_rate.to_pb(),
            request_id=input.request_id,
        )
        if input.geo is not None:
            request.geo = input.geo.to_pb()
        if input.availability is not None:
            request.availability = input.availability.to_pb()
        response = await rpc(marketplace(info).create_space(request))
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Edit your space; an address change resets verification.")
    async def update_space(
        self, info: Info, space_id: strawberry.ID, input: UpdateSpaceInput
    ) -> LearningSpace:
        info.context.require_token()
        request = pb.UpdateSpaceRequest(
            space_id=str(space_id),
            name=input.name,
            description=input.description,
            address=input.address,
            time_zone=input.time_zone,
            capacity=_u32(input.capacity) if input.capacity is not None else None,
        )
        if input.geo is not None:
            request.geo = input.geo.to_pb()
        if input.amenities is not None:
            request.amenities = [pb.Amenity.from_string(a.value) for a in input.amenities]
            request.update_amenities = True
        if input.accessibility_features is not None:
            request.accessibility_features = [f.to_pb() for f in input.accessibility_features]
            request.update_accessibility_features = True
        if input.hourly_rate is not None:
            request.hourly_rate = input.hourly_rate.to_pb()
        response = await rpc(marketplace(info).update_space(request))
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Replace your space's weekly schedule and exceptions.")
    async def set_space_availability(
        self, info: Info, space_id: strawberry.ID, availability: AvailabilityInput
    ) -> LearningSpace:
        info.context.require_token()
        response = await rpc(
            marketplace(info).set_availability(
                pb.SetAvailabilityRequest(space_id=str(space_id), availability=availability.to_pb())
            )
        )
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Add a safety certification; it counts once attested.")
    async def add_space_certification(
        self, info: Info, input: AddCertificationInput
    ) -> CertificationPayload:
        info.context.require_token()
        request = pb.AddCertificationRequest(
            space_id=str(input.space_id),
            name=input.name,
            issuer=input.issuer,
            reference=input.reference,
            request_id=input.request_id,
        )
        if input.valid_until is not None:
            request.valid_until = input.valid_until
        response = await rpc(marketplace(info).add_certification(request))
        return CertificationPayload(
            space=LearningSpace.from_pb(response.space),
            certification=SafetyCertification.from_pb(response.certification),
        )

    @strawberry.mutation(description="Ask admins to verify your space.")
    async def request_space_verification(
        self, info: Info, space_id: strawberry.ID, note: str = ""
    ) -> LearningSpace:
        info.context.require_token()
        response = await rpc(
            marketplace(info).request_verification(
                pb.RequestVerificationRequest(space_id=str(space_id), note=note)
            )
        )
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Attest a certification after checking it (admin).")
    async def attest_space_certification(
        self,
        info: Info,
        space_id: strawberry.ID,
        certification_id: strawberry.ID,
        child_protection: bool = False,
    ) -> CertificationPayload:
        info.context.require_token()
        response = await rpc(
            marketplace(info).attest_certification(
                pb.AttestCertificationRequest(
                    space_id=str(space_id),
                    certification_id=str(certification_id),
                    child_protection=child_protection,
                )
            )
        )
        return CertificationPayload(
            space=LearningSpace.from_pb(response.space),
            certification=SafetyCertification.from_pb(response.certification),
        )

    @strawberry.mutation(description="Approve or reject a pending verification (admin).")
    async def review_space_verification(
        self, info: Info, space_id: strawberry.ID, approve: bool, note: str = ""
    ) -> LearningSpace:
        info.context.require_token()
        response = await rpc(
            marketplace(info).review_verification(
                pb.ReviewVerificationRequest(space_id=str(space_id), approve=approve, note=note)
            )
        )
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Request a space for a time window (no double booking).")
    async def create_reservation(self, info: Info, input: CreateReservationInput) -> Reservation:
        info.context.require_token()
        response = await rpc(
            marketplace(info).create_reservation(
                pb.CreateReservationRequest(
                    space_id=str(input.space_id),
                    tutor_id=str(input.tutor_id or ""),
                    student_id=str(input.student_id or ""),
                    start_time=input.start_time,
                    end_time=input.end_time,
                    safety_requirements=_safety(input.safety_requirements),
                    request_id=input.request_id,
                )
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Confirm a requested reservation (space owner).")
    async def confirm_reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        info.context.require_token()
        response = await rpc(
            marketplace(info).confirm_reservation(
                pb.ConfirmReservationRequest(reservation_id=str(id))
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Cancel a reservation; the policy decides the refund.")
    async def cancel_reservation(
        self, info: Info, id: strawberry.ID, reason: str = ""
    ) -> Reservation:
        info.context.require_token()
        response = await rpc(
            marketplace(info).cancel_reservation(
                pb.CancelReservationRequest(reservation_id=str(id), reason=reason)
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Mark a confirmed reservation completed after its end.")
    async def complete_reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        info.context.require_token()
        response = await rpc(
            marketplace(info).complete_reservation(
                pb.CompleteReservationRequest(reservation_id=str(id))
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Book a tutor session in a space (the tutor).")
    async def book_tutor_session(
        self, info: Info, input: BookTutorSessionInput
    ) -> TutorSessionBooking:
        info.context.require_token()
        response = await rpc(
            marketplace(info).book_tutor_session(
                pb.BookTutorSessionRequest(
                    tutor_id=str(input.tutor_id or ""),
                    student_id=str(input.student_id),
                    space_id=str(input.space_id),
                    start_time=input.start_time,
                    end_time=input.end_time,
                    subject=input.subject,
                    class_id=str(input.class_id or ""),
                    safety_requirements=_safety(input.safety_requirements),
                    request_id=input.request_id,
                )
            )
        )
        return TutorSessionBooking(
            session=TutorSession.from_pb(response.session),
            reservation=Reservation.from_pb(response.reservation),
        )

    @strawberry.mutation(description="Complete a tutor session and its reservation (the tutor).")
    async def complete_tutor_session(self, info: Info, id: strawberry.ID) -> TutorSession:
        info.context.require_token()
        response = await rpc(
            marketplace(info).complete_tutor_session(
                pb.CompleteTutorSessionRequest(session_id=str(id))
            )
        )
        return TutorSession.from_pb(response.session)

    @strawberry.mutation(description="Cancel a tutor session and its reservation.")
    async def cancel_tutor_session(
        self, info: Info, id: strawberry.ID, reason: str = ""
    ) -> TutorSessionBooking:
        info.context.require_token()
        response = await rpc(
            marketplace(info).cancel_tutor_session(
                pb.CancelTutorSessionRequest(session_id=str(id), reason=reason)
            )
        )
        return TutorSessionBooking(
            session=TutorSession.from_pb(response.session),
            reservation=Reservation.from_pb(response.reservation),
        )

    @strawberry.mutation(description="Rate a space after a completed reservation there.")
    async def rate_space(self, info: Info, input: RateSpaceInput) -> SpaceRatingPayload:
        info.context.require_token()
        response = await rpc(
            marketplace(info).rate_space(
                pb.RateSpaceRequest(
                    space_id=str(input.space_id),
                    reservation_id=str(input.reservation_id),
                    overall=_u32(input.overall),
                    safety=_u32(input.safety),
                    cleanliness=_u32(input.cleanliness),
                    accessibility=_u32(input.accessibility),
                    comment=input.comment,
                )
            )
        )
        return SpaceRatingPayload(
            rating=SpaceRating.from_pb(response.rating),
            summary=SpaceRatingSummary.from_pb(response.summary),
        )


@strawberry.type
class MarketplaceSubscription:
    @strawberry.subscription(
        description="Reservation changes of a space you own, or (without spaceId) your own."
    )
    async def reservation_changed(
        self, info: Info, space_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ReservationEvent, None]:
        info.context.require_token()
        stream = marketplace(info).watch_reservations(
            pb.WatchReservationsRequest(space_id=str(space_id or ""))
        )
        async with aclosing(stream):  # type: ignore[type-var]
            async for reply in rpc_stream(stream):
                yield ReservationEvent(
                    kind=ReservationEventKind[_name(pb.ReservationEventKind(reply.kind))],
                    reservation=Reservation.from_pb(reply.reservation),
                )
