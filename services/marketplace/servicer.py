"""The keiko.marketplace.v1.MarketplaceService gRPC servicer: decode, authorize, call, encode.

Public RPCs (no access token): GetSpace, SearchSpaces, GetSpaceAvailability,
ListSpaceRatings. Every other RPC is authenticated by the host's interceptor and
authorized per object by `MarketplaceService`.

Contract notes:
- An overlapping booking answers ALREADY_EXISTS "slot already booked" (the database's
  exclusion constraint / trigger refused it). The proto's doc comment on
  CreateReservation says FAILED_PRECONDITION; the team brief asks for ALREADY_EXISTS.
- BookTutorSession does not call the learning service: it emits
  `marketplace.tutor_session_booked`, and `learning_session_id` stays empty until the
  learning service records it.
- `anchor_tx_hash` of a certification stays empty: the chain translator anchors the
  `marketplace.certification_attested` event; nothing here fakes a transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import betterproto

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import Unavailable, ValidationError
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.invitations.rpc import InvitationRpcs, status_to_pb
from services.kit.runtime import ServiceRuntime
from services.marketplace.domain import (
    AccessibilityFeature,
    Availability,
    Certification,
    ExceptionKind,
    GeoPoint,
    Money,
    RawException,
    RawWeeklySlot,
    Reservation,
    ReservationStatus,
    Space,
    SpaceFilter,
    SpaceRating,
    TutorSession,
    TutorSessionStatus,
    VerificationStatus,
    hhmm,
    validate_availability,
    validate_geo,
    validate_money,
    validate_window,
)
from services.marketplace.service import (
    RESERVATION_TOPICS,
    MarketplaceService,
    RatingInput,
    ReservationInput,
    SessionInput,
    SpaceInput,
    SpaceUpdate,
)
from services.marketplace.storage import outbox

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TO_PB_VERIFICATION = {v: pb.VerificationStatus.from_string(v.name) for v in VerificationStatus}
_TO_PB_STATUS = {s: pb.ReservationStatus.from_string(s.name) for s in ReservationStatus}
_FROM_PB_STATUS = {int(v): k for k, v in _TO_PB_STATUS.items()}
_TO_PB_EVENT_KIND = {s: pb.ReservationEventKind.from_string(s.name) for s in ReservationStatus}
_TO_PB_SESSION_STATUS = {s: pb.TutorSessionStatus.from_string(s.name) for s in TutorSessionStatus}
_FROM_PB_SESSION_STATUS = {int(v): k for k, v in _TO_PB_SESSION_STATUS.items()}
_EXCEPTION_KINDS = {
    int(pb.AvailabilityExceptionKind.CLOSED): ExceptionKind.CLOSED,
    int(pb.AvailabilityExceptionKind.EXTRA): ExceptionKind.EXTRA,
}


class MarketplaceServicer(InvitationRpcs, pb.MarketplaceServiceBase):
    public_methods = frozenset(
        {"GetSpace", "SearchSpaces", "GetSpaceAvailability", "ListSpaceRatings"}
    )

    def __init__(self, service: MarketplaceService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout
        # ListInvitations, RespondToInvitation, WatchInvitations (the shared mixin).
        self.invitation_owner = service
        self.invitation_pb = pb

    # -- spaces ---------------------------------------------------------------------------

    async def create_space(
        self, create_space_request: pb.CreateSpaceRequest
    ) -> pb.CreateSpaceResponse:
        caller = current_principal()
        r = create_space_request
        space = await self.service.create_space(
            caller,
            SpaceInput(
                name=r.name,
                description=r.description,
                address=r.address,
                geo=_geo(r.geo, "space.geo"),
                time_zone=r.time_zone,
                capacity=r.capacity,
                amenities=_amenities(r.amenities, "space.amenities"),
                accessibility_features=_features(
                    r.accessibility_features, "space.accessibility_features"
                ),
                rate_currency=r.hourly_rate.currency_code,
                rate_minor=r.hourly_rate.amount_minor,
                availability=_availability(r.availability, "space.availability"),
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
        space = await self.service.update_space(
            caller,
            r.space_id,
            SpaceUpdate(
                name=r.name,
                description=r.description,
                address=r.address,
                geo=_geo(r.geo, "space.geo"),
                time_zone=r.time_zone,
                capacity=r.capacity,
                amenities=_amenities(r.amenities, "space.amenities")
                if r.update_amenities
                else None,
                accessibility_features=_features(
                    r.accessibility_features, "space.accessibility_features"
                )
                if r.update_accessibility_features
                else None,
                hourly_rate=rate,
            ),
        )
        return pb.UpdateSpaceResponse(space=self._space(space))

    async def get_space(self, get_space_request: pb.GetSpaceRequest) -> pb.GetSpaceResponse:
        space = await self.service.get_space(get_space_request.space_id)
        return pb.GetSpaceResponse(space=self._space(space))

    async def search_spaces(
        self, search_spaces_request: pb.SearchSpacesRequest
    ) -> pb.SearchSpacesResponse:
        r = search_spaces_request
        near = _geo(r.near, "near")
        if near is not None and not r.radius_km > 0:
            raise ValidationError("radius_km", "must be positive when near is given")
        if r.radius_km < 0 or r.radius_km > 20_000:
            raise ValidationError("radius_km", "must be between 0 and 20000")
        window = None
        if betterproto.serialized_on_wire(r.window):
            window = validate_window(_time(r.window.start_time), _time(r.window.end_time), "window")
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
            amenities=frozenset(_amenities(r.amenities, "amenities")),
            accessibility=frozenset(_accessibility_types(r.accessibility, "accessibility")),
            child_safe_only=r.child_safe_only,
            verified_only=r.verified_only,
            max_hourly_rate=max_rate,
            owner_id=r.owner_id,
        )
        page = await self.service.search_spaces(spec, r.page_size, r.page_token)
        return pb.SearchSpacesResponse(
            spaces=[self._space(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def set_availability(
        self, set_availability_request: pb.SetAvailabilityRequest
    ) -> pb.SetAvailabilityResponse:
        caller = current_principal()
        r = set_availability_request
        availability = _availability(r.availability, "availability")
        space = await self.service.set_availability(caller, r.space_id, availability)
        return pb.SetAvailabilityResponse(space=self._space(space))

    async def get_space_availability(
        self, get_space_availability_request: pb.GetSpaceAvailabilityRequest
    ) -> pb.GetSpaceAvailabilityResponse:
        r = get_space_availability_request
        free = await self.service.space_availability(
            r.space_id, _time(r.window.start_time), _time(r.window.end_time)
        )
        return pb.GetSpaceAvailabilityResponse(
            free=[pb.TimeWindow(start_time=s, end_time=e) for s, e in free]
        )

    async def add_certification(
        self, add_certification_request: pb.AddCertificationRequest
    ) -> pb.AddCertificationResponse:
        caller = current_principal()
        r = add_certification_request
        space, cert = await self.service.add_certification(
            caller,
            r.space_id,
            name=r.name,
            issuer=r.issuer,
            reference=r.reference,
            valid_until=_time(r.valid_until),
            request_id=r.request_id,
        )
        return pb.AddCertificationResponse(space=self._space(space), certification=_cert(cert))

    async def request_verification(
        self, request_verification_request: pb.RequestVerificationRequest
    ) -> pb.RequestVerificationResponse:
        caller = current_principal()
        r = request_verification_request
        space = await self.service.request_verification(caller, r.space_id, r.note)
        return pb.RequestVerificationResponse(space=self._space(space))

    async def attest_certification(
        self, attest_certification_request: pb.AttestCertificationRequest
    ) -> pb.AttestCertificationResponse:
        caller = current_principal()
        r = attest_certification_request
        space, cert = await self.service.attest_certification(
            caller, r.space_id, r.certification_id, r.child_protection
        )
        return pb.AttestCertificationResponse(space=self._space(space), certification=_cert(cert))

    async def review_verification(
        self, review_verification_request: pb.ReviewVerificationRequest
    ) -> pb.ReviewVerificationResponse:
        caller = current_principal()
        r = review_verification_request
        space = await self.service.review_verification(caller, r.space_id, r.approve, r.note)
        return pb.ReviewVerificationResponse(space=self._space(space))

    # -- reservations ---------------------------------------------------------------------

    async def create_reservation(
        self, create_reservation_request: pb.CreateReservationRequest
    ) -> pb.CreateReservationResponse:
        caller = current_principal()
        r = create_reservation_request
        reservation = await self.service.create_reservation(
            caller,
            ReservationInput(
                space_id=r.space_id,
                tutor_id=r.tutor_id,
                student_id=r.student_id,
                start_time=_time(r.start_time),
                end_time=_time(r.end_time),
                safety_requirements=_safety(r.safety_requirements),
                request_id=r.request_id,
            ),
        )
        return pb.CreateReservationResponse(reservation=reservation_to_pb(reservation))

    async def confirm_reservation(
        self, confirm_reservation_request: pb.ConfirmReservationRequest
    ) -> pb.ConfirmReservationResponse:
        caller = current_principal()
        reservation = await self.service.confirm_reservation(
            caller, confirm_reservation_request.reservation_id
        )
        return pb.ConfirmReservationResponse(reservation=reservation_to_pb(reservation))

    async def cancel_reservation(
        self, cancel_reservation_request: pb.CancelReservationRequest
    ) -> pb.CancelReservationResponse:
        caller = current_principal()
        r = cancel_reservation_request
        reservation, _ = await self.service.cancel_reservation(caller, r.reservation_id, r.reason)
        return pb.CancelReservationResponse(reservation=reservation_to_pb(reservation))

    async def complete_reservation(
        self, complete_reservation_request: pb.CompleteReservationRequest
    ) -> pb.CompleteReservationResponse:
        caller = current_principal()
        reservation = await self.service.complete_reservation(
            caller, complete_reservation_request.reservation_id
        )
        return pb.CompleteReservationResponse(reservation=reservation_to_pb(reservation))

    async def get_reservation(
        self, get_reservation_request: pb.GetReservationRequest
    ) -> pb.GetReservationResponse:
        caller = current_principal()
        reservation = await self.service.get_reservation(
            caller, get_reservation_request.reservation_id
        )
        return pb.GetReservationResponse(reservation=reservation_to_pb(reservation))

    async def list_reservations(
        self, list_reservations_request: pb.ListReservationsRequest
    ) -> pb.ListReservationsResponse:
        caller = current_principal()
        r = list_reservations_request
        statuses = []
        for index, status in enumerate(r.statuses):
            found = _FROM_PB_STATUS.get(int(status))
            if found is None:
                raise ValidationError(f"statuses[{index}]", "must be a known reservation status")
            statuses.append(found)
        window = None
        if betterproto.serialized_on_wire(r.window):
            window = (_time(r.window.start_time), _time(r.window.end_time))
        page = await self.service.list_reservations(
            caller,
            space_id=r.space_id,
            statuses=statuses,
            window=window,
            requested_size=r.page_size,
            page_token=r.page_token,
        )
        return pb.ListReservationsResponse(
            reservations=[reservation_to_pb(x) for x in page.items],
            next_page_token=page.next_page_token,
        )

    async def watch_reservations(
        self, watch_reservations_request: pb.WatchReservationsRequest
    ) -> AsyncIterator[pb.WatchReservationsResponse]:
        caller = current_principal()
        space_id = watch_reservations_request.space_id
        await self.service.authorize_watch(caller, space_id)
        if self.fanout is None:
            raise Unavailable("watching reservations is not available in this process")
        predicate = self.service.watch_predicate(caller, space_id)
        async with self.fanout.listen(RESERVATION_TOPICS, predicate) as events:
            async for event in events:
                reservation = Reservation.from_json(event.payload["reservation"])
                yield pb.WatchReservationsResponse(
                    kind=_TO_PB_EVENT_KIND[reservation.status],
                    reservation=reservation_to_pb(reservation),
                )

    # -- tutor sessions -------------------------------------------------------------------

    async def book_tutor_session(
        self, book_tutor_session_request: pb.BookTutorSessionRequest
    ) -> pb.BookTutorSessionResponse:
        caller = current_principal()
        r = book_tutor_session_request
        session, reservation = await self.service.book_tutor_session(
            caller,
            SessionInput(
                space_id=r.space_id,
                tutor_id=r.tutor_id,
                student_id=r.student_id,
                start_time=_time(r.start_time),
                end_time=_time(r.end_time),
                subject=r.subject,
                class_id=r.class_id,
                safety_requirements=_safety(r.safety_requirements),
                request_id=r.request_id,
            ),
        )
        return pb.BookTutorSessionResponse(
            session=session_to_pb(session), reservation=reservation_to_pb(reservation)
        )

    async def complete_tutor_session(
        self, complete_tutor_session_request: pb.CompleteTutorSessionRequest
    ) -> pb.CompleteTutorSessionResponse:
        caller = current_principal()
        session = await self.service.complete_tutor_session(
            caller, complete_tutor_session_request.session_id
        )
        return pb.CompleteTutorSessionResponse(session=session_to_pb(session))

    async def cancel_tutor_session(
        self, cancel_tutor_session_request: pb.CancelTutorSessionRequest
    ) -> pb.CancelTutorSessionResponse:
        caller = current_principal()
        r = cancel_tutor_session_request
        session, reservation = await self.service.cancel_tutor_session(
            caller, r.session_id, r.reason
        )
        return pb.CancelTutorSessionResponse(
            session=session_to_pb(session), reservation=reservation_to_pb(reservation)
        )

    async def get_tutor_session(
        self, get_tutor_session_request: pb.GetTutorSessionRequest
    ) -> pb.GetTutorSessionResponse:
        caller = current_principal()
        session = await self.service.get_tutor_session(caller, get_tutor_session_request.session_id)
        return pb.GetTutorSessionResponse(session=session_to_pb(session))

    async def list_tutor_sessions(
        self, list_tutor_sessions_request: pb.ListTutorSessionsRequest
    ) -> pb.ListTutorSessionsResponse:
        caller = current_principal()
        r = list_tutor_sessions_request
        statuses = []
        for index, status in enumerate(r.statuses):
            found = _FROM_PB_SESSION_STATUS.get(int(status))
            if found is None:
                raise ValidationError(f"statuses[{index}]", "must be a known session status")
            statuses.append(found)
        page = await self.service.list_tutor_sessions(
            caller,
            tutor_id=r.tutor_id,
            student_id=r.student_id,
            space_id=r.space_id,
            statuses=statuses,
            requested_size=r.page_size,
            page_token=r.page_token,
        )
        return pb.ListTutorSessionsResponse(
            sessions=[session_to_pb(s) for s in page.items], next_page_token=page.next_page_token
        )

    # -- ratings --------------------------------------------------------------------------

    async def rate_space(self, rate_space_request: pb.RateSpaceRequest) -> pb.RateSpaceResponse:
        caller = current_principal()
        r = rate_space_request
        rating, space = await self.service.rate_space(
            caller,
            RatingInput(
                space_id=r.space_id,
                reservation_id=r.reservation_id,
                overall=r.overall,
                safety=r.safety,
                cleanliness=r.cleanliness,
                accessibility=r.accessibility,
                comment=r.comment,
            ),
        )
        return pb.RateSpaceResponse(rating=rating_to_pb(rating), summary=_summary(space))

    async def list_space_ratings(
        self, list_space_ratings_request: pb.ListSpaceRatingsRequest
    ) -> pb.ListSpaceRatingsResponse:
        r = list_space_ratings_request
        page = await self.service.list_ratings(r.space_id, r.page_size, r.page_token)
        return pb.ListSpaceRatingsResponse(
            ratings=[rating_to_pb(x) for x in page.items], next_page_token=page.next_page_token
        )

    # -- encoding -------------------------------------------------------------------------

    def _space(self, space: Space) -> pb.LearningSpace:
        return space_to_pb(space, self.service.clock.now())


# -- composition root -----------------------------------------------------------------------


def build_marketplace_servicer(runtime: ServiceRuntime) -> MarketplaceServicer:
    """Composition-root factory: the servicer on the runtime's database, clock and fanout,
    and the marketplace outbox relay registered as the background job
    `marketplace.outbox`."""
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    runtime.run_in_background("marketplace.outbox", relay.run)
    service = MarketplaceService(runtime.database, runtime.clock, on_commit=relay.notify)
    return MarketplaceServicer(service, runtime.fanout)


# -- decoding -------------------------------------------------------------------------------


def _time(value: datetime | None) -> datetime | None:
    """An unset Timestamp arrives as the epoch: None."""
    if value is None or value == _EPOCH:
        return None
    return value.astimezone(UTC)


def _geo(value: pb.GeoPoint, field_path: str) -> GeoPoint | None:
    if not betterproto.serialized_on_wire(value):
        return None
    return validate_geo(value.latitude, value.longitude, field_path)


def _known(value: betterproto.Enum) -> str | None:
    name = getattr(value, "name", None)
    if not name or int(value) == 0:
        return None
    return str(name)


def _amenities(values: list[pb.Amenity], field_path: str) -> tuple[str, ...]:
    result = []
    for index, value in enumerate(values):
        name = _known(value)
        if name is None:
            raise ValidationError(f"{field_path}[{index}]", "must be a known amenity")
        result.append(name)
    return tuple(dict.fromkeys(result))


def _accessibility_types(values: list[pb.AccessibilityType], field_path: str) -> tuple[str, ...]:
    result = []
    for index, value in enumerate(values):
        name = _known(value)
        if name is None:
            raise ValidationError(f"{field_path}[{index}]", "must be a known accessibility type")
        result.append(name)
    return tuple(result)


def _features(
    values: list[pb.AccessibilityFeature], field_path: str
) -> tuple[AccessibilityFeature, ...]:
    result = []
    for index, value in enumerate(values):
        name = _known(value.feature_type)
        if name is None:
            raise ValidationError(
                f"{field_path}[{index}].feature_type", "must be a known accessibility type"
            )
        result.append(AccessibilityFeature(name, value.description))
    return tuple(result)


def _safety(values: list[pb.SafetyRequirement]) -> tuple[str, ...]:
    result = []
    for index, value in enumerate(values):
        name = _known(value)
        if name is None:
            raise ValidationError(
                f"safety_requirements[{index}]", "must be a known safety requirement"
            )
        result.append(name)
    return tuple(result)


def _availability(value: pb.Availability, field_path: str) -> Availability:
    return validate_availability(
        [
            RawWeeklySlot(int(s.weekday) if _known(s.weekday) else 0, s.start_time, s.end_time)
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


def _money(value: Money) -> common_pb.Money:
    return common_pb.Money(currency_code=value.currency, amount_minor=value.amount_minor)


def _cert(cert: Certification) -> pb.SafetyCertification:
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


def _summary(space: Space) -> pb.SpaceRatingSummary:
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
        safety_certifications=[_cert(c) for c in space.certifications],
        accessibility_features=[
            pb.AccessibilityFeature(
                feature_type=pb.AccessibilityType.from_string(f.feature_type),
                description=f.description,
            )
            for f in space.accessibility_features
        ],
        hourly_rate=_money(space.hourly_rate),
        availability=availability_to_pb(space.availability),
        verified=space.verified,
        verification_status=_TO_PB_VERIFICATION[space.verification_status],
        child_safe=space.child_safe(now),
        rating_summary=_summary(space),
        created_at=space.created_at,
        updated_at=space.updated_at,
    )
    if space.geo is not None:
        message.geo = pb.GeoPoint(latitude=space.geo.latitude, longitude=space.geo.longitude)
    return message


def reservation_to_pb(r: Reservation) -> pb.Reservation:
    message = pb.Reservation(
        id=r.id,
        space_id=r.space_id,
        tutor_id=r.tutor_id,
        student_id=r.student_id,
        start_time=r.start_time,
        end_time=r.end_time,
        status=_TO_PB_STATUS[r.status],
        total_cost=_money(r.total_cost),
        safety_requirements=[pb.SafetyRequirement.from_string(s) for s in r.safety_requirements],
        tutor_session_id=r.tutor_session_id,
        created_by=r.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
        student_invitation=status_to_pb(r.student_invitation),
    )
    c = r.cancellation
    if c is not None:
        message.cancellation = pb.Cancellation(
            cancelled_by=c.cancelled_by,
            cancelled_at=c.cancelled_at,
            reason=c.reason,
            outcome=pb.RefundOutcome.from_string(c.outcome.name),
            refund=_money(c.refund),
        )
    return message


def session_to_pb(s: TutorSession) -> pb.TutorSession:
    return pb.TutorSession(
        id=s.id,
        tutor_id=s.tutor_id,
        student_id=s.student_id,
        space_id=s.space_id,
        reservation_id=s.reservation_id,
        start_time=s.start_time,
        end_time=s.end_time,
        subject=s.subject,
        status=_TO_PB_SESSION_STATUS[s.status],
        learning_session_id=s.learning_session_id,
        created_at=s.created_at,
        student_invitation=status_to_pb(s.student_invitation),
    )


def rating_to_pb(rating: SpaceRating) -> pb.SpaceRating:
    return pb.SpaceRating(
        id=rating.id,
        space_id=rating.space_id,
        rater_id=rating.rater_id,
        reservation_id=rating.reservation_id,
        overall=rating.overall,
        safety=rating.safety,
        cleanliness=rating.cleanliness,
        accessibility=rating.accessibility,
        comment=rating.comment,
        created_at=rating.created_at,
    )


__all__ = [
    "MarketplaceServicer",
    "build_marketplace_servicer",
    "reservation_to_pb",
    "space_to_pb",
]
