"""The marketplace application service: the use cases behind every marketplace RPC.

The servicer decodes requests and calls these methods with the caller's Principal; every
write authorizes the caller against the object it touches, validates its input (raising
`ValidationError` with the field path), runs in one transaction with the events it
announces (outbox), and is safe to retry (request_id, or a no-op when the object is
already in the requested state).

Who may do what:

- spaces: create needs role space_owner (or admin); edit, availability, certifications
  and verification requests are the owner's (or an admin's); attest and review are admin.
- reservations: made by the tutor or the student named on it (or an admin); confirmed
  by the space owner; cancelled by the tutor, the student, the booker, the space owner
  or an admin; completed (after the end) by the owner, the tutor or an admin; read by
  those and the owner.
- tutor sessions: booked by the tutor (role tutor) or an admin; completed by the tutor;
  cancelled by either participant, the owner or an admin.
- ratings: by a participant of a completed reservation in the space (not its owner),
  once per reservation and participant.

No double booking: the insert of an overlapping active reservation is refused by the
database (exclusion constraint / trigger, see storage and the migration) and reported as
ALREADY_EXISTS "slot already booked". There is deliberately no overlap pre-check here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal, Role
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation, violated_constraint
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.invitations import Invitation, InvitationKind, InvitationStatus
from services.kit.invitations.rpc import list_page
from services.marketplace.consent import (
    cancel_invitations,
    invite_named,
    marketplace_invitations,
    require_consent,
    student_consent,
    with_reservation_consent,
    with_session_consent,
)
from services.marketplace.domain import (
    ACTIVE_STATUSES,
    MAX_ADDRESS,
    MAX_AVAILABILITY_WINDOW,
    MAX_CERT_FIELD,
    MAX_COMMENT,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_NOTE,
    MAX_REASON,
    MAX_SUBJECT,
    NO_OVERLAP_CONSTRAINT,
    AccessibilityFeature,
    Availability,
    Cancellation,
    Certification,
    GeoPoint,
    Interval,
    Money,
    Page,
    RatingSummary,
    Reservation,
    ReservationStatus,
    Space,
    SpaceFilter,
    SpaceRating,
    TutorSession,
    TutorSessionStatus,
    VerificationStatus,
    cancellation_refund,
    decode_cursor,
    encode_cursor,
    free_intervals,
    is_open_for,
    page_size,
    reservation_cost,
    validate_accessibility,
    validate_booking_slot,
    validate_capacity,
    validate_money,
    validate_rating_score,
    validate_request_id,
    validate_text,
    validate_time_zone,
    validate_window,
)
from services.marketplace.storage import MarketplaceRepository, new_id, outbox

# Topics this service publishes (through the outbox).
TOPIC_RESERVATION = {
    ReservationStatus.REQUESTED: "marketplace.reservation_requested",
    ReservationStatus.CONFIRMED: "marketplace.reservation_confirmed",
    ReservationStatus.CANCELLED: "marketplace.reservation_cancelled",
    ReservationStatus.COMPLETED: "marketplace.reservation_completed",
}
RESERVATION_TOPICS = tuple(TOPIC_RESERVATION.values())
TOPIC_CERTIFICATION_ATTESTED = "marketplace.certification_attested"
TOPIC_SPACE_VERIFIED = "marketplace.space_verified"
TOPIC_SPACE_VERIFICATION_REJECTED = "marketplace.space_verification_rejected"
TOPIC_TUTOR_SESSION_BOOKED = "marketplace.tutor_session_booked"
TOPIC_TUTOR_SESSION_COMPLETED = "marketplace.tutor_session_completed"
TOPIC_TUTOR_SESSION_CANCELLED = "marketplace.tutor_session_cancelled"
TOPIC_SPACE_RATED = "marketplace.space_rated"

SAFETY_GUARDIAN_PRESENT = "GUARDIAN_PRESENT"
MAX_ID = 64
# Search scans at most this many rows per request; a sparse page comes back with a token.
SEARCH_BATCH = 200
SEARCH_SCAN_LIMIT = 2000


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


@dataclass(frozen=True)
class ReservationInput:
    space_id: str
    tutor_id: str
    student_id: str
    start_time: datetime | None
    end_time: datetime | None
    safety_requirements: tuple[str, ...] = ()
    request_id: str = ""


@dataclass(frozen=True)
class SessionInput:
    space_id: str
    tutor_id: str
    student_id: str
    start_time: datetime | None
    end_time: datetime | None
    subject: str
    class_id: str = ""
    safety_requirements: tuple[str, ...] = ()
    request_id: str = ""


@dataclass(frozen=True)
class RatingInput:
    space_id: str
    reservation_id: str
    overall: int
    safety: int
    cleanliness: int
    accessibility: int
    comment: str


def _require_id(value: str, field_path: str) -> str:
    if not value:
        raise ValidationError(field_path, "is required")
    if len(value) > MAX_ID:
        raise ValidationError(field_path, f"must be at most {MAX_ID} characters")
    return value


def _optional_id(value: str, field_path: str) -> str:
    if len(value) > MAX_ID:
        raise ValidationError(field_path, f"must be at most {MAX_ID} characters")
    return value


def _iso(value: datetime) -> str:
    return value.isoformat()


class MarketplaceService:
    def __init__(
        self, db: Database, clock: Clock, *, on_commit: Callable[[], None] | None = None
    ) -> None:
        """`on_commit` runs after a transaction that enqueued events committed (the outbox
        relay's `notify`, so events go out now instead of at the next poll)."""
        self.db = db
        self.clock = clock
        self._on_commit = on_commit
        self.invitations = marketplace_invitations()

    # -- plumbing -------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[_Tx]:
        async with self.db.transaction() as session:
            tx = _Tx(MarketplaceRepository(session, self.db.dialect))
            yield tx
        if tx.events and self._on_commit is not None:
            self._on_commit()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[MarketplaceRepository]:
        async with self.db.session() as session:
            yield MarketplaceRepository(session, self.db.dialect)

    async def _space(
        self, repo: MarketplaceRepository, space_id: str, field: str, *, lock: bool = False
    ) -> Space:
        """`lock`: on PostgreSQL, hold the space row until commit (SELECT ... FOR UPDATE), so
        concurrent edits of one space apply one after the other instead of overwriting each
        other from stale reads (SQLite's write lock already serializes writers)."""
        _require_id(space_id, field)
        space = await repo.get_space(space_id, for_update=lock)
        if space is None:
            raise NotFound(f"space {space_id} not found")
        return space

    async def _reservation(
        self, repo: MarketplaceRepository, reservation_id: str, field: str = "reservation_id"
    ) -> Reservation:
        _require_id(reservation_id, field)
        found = await repo.get_reservation(reservation_id, for_update=True)
        if found is None:
            raise NotFound(f"reservation {reservation_id} not found")
        return found

    @staticmethod
    def _require_owner(principal: Principal, space: Space, action: str) -> None:
        if principal.user_id != space.owner_id and not principal.is_admin:
            raise PermissionDenied(f"only the space owner may {action}")

    @staticmethod
    def _require_admin(principal: Principal, action: str) -> None:
        if not principal.is_admin:
            raise PermissionDenied(f"only an admin may {action}")

    # -- spaces ---------------------------------------------------------------------------

    async def create_space(self, principal: Principal, data: SpaceInput) -> Space:
        if not (principal.has_role(Role.SPACE_OWNER) or principal.is_admin):
            raise PermissionDenied("requires role space_owner")
        request_id = validate_request_id(data.request_id)
        now = self.clock.now()
        space = Space(
            id=new_id(),
            owner_id=principal.user_id,
            name=validate_text(data.name, "space.name", maximum=MAX_NAME, required=True),
            description=validate_text(
                data.description, "space.description", maximum=MAX_DESCRIPTION
            ),
            address=validate_text(
                data.address, "space.address", maximum=MAX_ADDRESS, required=True
            ),
            geo=data.geo,
            time_zone=validate_time_zone(data.time_zone, "space.time_zone").key,
            capacity=validate_capacity(data.capacity, "space.capacity"),
            amenities=tuple(dict.fromkeys(data.amenities)),
            accessibility_features=validate_accessibility(
                data.accessibility_features, "space.accessibility_features"
            ),
            hourly_rate=validate_money(data.rate_currency, data.rate_minor, "space.hourly_rate"),
            availability=data.availability,
            verification_status=VerificationStatus.UNVERIFIED,
            rating=RatingSummary(),
            created_at=now,
            updated_at=now,
        )
        if request_id:
            async with self._read() as repo:
                existing = await repo.space_id_by_request(principal.user_id, request_id)
                if existing is not None:
                    return await self._space(repo, existing, "request_id")
        try:
            async with self._write() as tx:
                await tx.repo.insert_space(space, request_id)
        except IntegrityError as exc:
            if request_id and is_unique_violation(exc):  # a concurrent retry won
                async with self._read() as repo:
                    existing = await repo.space_id_by_request(principal.user_id, request_id)
                    if existing is not None:
                        return await self._space(repo, existing, "request_id")
            raise
        return space

    async def update_space(self, principal: Principal, space_id: str, data: SpaceUpdate) -> Space:
        now = self.clock.now()
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            self._require_owner(principal, space, "edit it")
            changes: dict[str, Any] = {}
            if data.name is not None:
                changes["name"] = validate_text(
                    data.name, "space.name", maximum=MAX_NAME, required=True
                )
            if data.description is not None:
                changes["description"] = validate_text(
                    data.description, "space.description", maximum=MAX_DESCRIPTION
                )
            if data.geo is not None:
                changes["geo"] = data.geo
            if data.time_zone is not None:
                changes["time_zone"] = validate_time_zone(data.time_zone, "space.time_zone").key
            if data.capacity is not None:
                changes["capacity"] = validate_capacity(data.capacity, "space.capacity")
            if data.amenities is not None:
                changes["amenities"] = tuple(dict.fromkeys(data.amenities))
            if data.accessibility_features is not None:
                changes["accessibility_features"] = validate_accessibility(
                    data.accessibility_features, "space.accessibility_features"
                )
            if data.hourly_rate is not None:
                changes["hourly_rate"] = validate_money(*data.hourly_rate, "space.hourly_rate")
            reset = False
            if data.address is not None:
                address = validate_text(
                    data.address, "space.address", maximum=MAX_ADDRESS, required=True
                )
                if address != space.address:
                    # Other premises: what was checked no longer holds.
                    changes["address"] = address
                    changes["verification_status"] = VerificationStatus.UNVERIFIED
                    reset = True
            if not changes:
                return space
            updated = replace(space, **changes, updated_at=now)
            await tx.repo.save_space(updated)
            if reset:
                await tx.repo.clear_attestations(space.id)
            return await self._space(tx.repo, space.id, "space_id")

    async def get_space(self, space_id: str) -> Space:
        async with self._read() as repo:
            return await self._space(repo, space_id, "space_id")

    async def search_spaces(
        self,
        spec: SpaceFilter,
        requested_size: int,
        page_token: str,
    ) -> Page[Space]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        now = self.clock.now()
        matched: list[Space] = []
        scanned = 0
        exhausted = False
        async with self._read() as repo:
            while len(matched) <= size and scanned < SEARCH_SCAN_LIMIT:
                batch = await repo.spaces_after(
                    cursor,
                    SEARCH_BATCH,
                    owner_id=spec.owner_id,
                    min_capacity=spec.min_capacity,
                    verified_only=spec.verified_only,
                    max_rate=spec.max_hourly_rate,
                )
                scanned += len(batch)
                candidates = [s for s in batch if spec.matches_static(s, now)]
                if spec.window is not None and candidates:
                    busy = await repo.active_intervals([c.id for c in candidates], *spec.window)
                    candidates = [c for c in candidates if c.id not in busy]
                matched.extend(candidates)
                if batch:
                    cursor = (batch[-1].created_at, batch[-1].id)
                if len(batch) < SEARCH_BATCH:
                    exhausted = True
                    break
        if len(matched) > size:
            last = matched[size - 1]
            return Page(matched[:size], encode_cursor(last.created_at, last.id))
        if not exhausted and cursor is not None:
            # Scan limit reached: more may match further on.
            return Page(matched, encode_cursor(*cursor))
        return Page(matched)

    async def set_availability(
        self, principal: Principal, space_id: str, availability: Availability
    ) -> Space:
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            self._require_owner(principal, space, "set its availability")
            updated = replace(space, availability=availability, updated_at=self.clock.now())
            await tx.repo.save_space(updated)
            return updated

    async def space_availability(
        self, space_id: str, start: datetime | None, end: datetime | None
    ) -> list[Interval]:
        window = validate_window(start, end, "window", maximum=MAX_AVAILABILITY_WINDOW)
        async with self._read() as repo:
            space = await self._space(repo, space_id, "space_id")
            busy = await repo.active_intervals([space.id], *window)
        return free_intervals(space.availability, space.time_zone, *window, busy.get(space.id, []))

    # -- certifications and verification --------------------------------------------------

    async def add_certification(
        self,
        principal: Principal,
        space_id: str,
        *,
        name: str,
        issuer: str,
        reference: str,
        valid_until: datetime | None,
        request_id: str = "",
    ) -> tuple[Space, Certification]:
        request_id = validate_request_id(request_id)
        now = self.clock.now()
        cert_name = validate_text(name, "certification.name", maximum=MAX_CERT_FIELD, required=True)
        cert_issuer = validate_text(
            issuer, "certification.issuer", maximum=MAX_CERT_FIELD, required=True
        )
        cert_reference = validate_text(reference, "certification.reference", maximum=MAX_CERT_FIELD)
        if valid_until is not None and valid_until <= now:
            raise ValidationError("certification.valid_until", "must be in the future")
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            self._require_owner(principal, space, "add certifications")
            if request_id:
                existing = await tx.repo.certification_id_by_request(space.id, request_id)
                if existing is not None:
                    return space, _cert(space, existing)
            cert = Certification(
                id=new_id(),
                space_id=space.id,
                name=cert_name,
                issuer=cert_issuer,
                reference=cert_reference,
                valid_until=valid_until,
                created_at=now,
            )
            await tx.repo.insert_certification(cert, request_id)
            space = await self._space(tx.repo, space.id, "space_id")
            return space, _cert(space, cert.id)

    async def request_verification(self, principal: Principal, space_id: str, note: str) -> Space:
        note = validate_text(note, "note", maximum=MAX_NOTE)
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            self._require_owner(principal, space, "request its verification")
            if space.verification_status is VerificationStatus.PENDING:
                return space
            if space.verification_status is VerificationStatus.VERIFIED:
                raise FailedPrecondition("the space is already verified")
            if not space.certifications:
                raise FailedPrecondition(
                    "add at least one safety certification before requesting verification"
                )
            await tx.repo.set_verification(
                space.id, VerificationStatus.PENDING, now=self.clock.now(), note=note
            )
            return await self._space(tx.repo, space.id, "space_id")

    async def attest_certification(
        self, principal: Principal, space_id: str, certification_id: str, child_protection: bool
    ) -> tuple[Space, Certification]:
        self._require_admin(principal, "attest certifications")
        _require_id(certification_id, "certification_id")
        now = self.clock.now()
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            cert = next((c for c in space.certifications if c.id == certification_id), None)
            if cert is None:
                raise NotFound(f"certification {certification_id} not found in space {space.id}")
            if cert.attested:
                if cert.child_protection != child_protection:
                    raise FailedPrecondition(
                        "certification already attested with a different child_protection"
                    )
                return space, cert  # a retry
            if not cert.valid_at(now):
                raise FailedPrecondition("the certification has expired")
            await tx.repo.attest_certification(
                cert.id, by=principal.user_id, at=now, child_protection=child_protection
            )
            # The chain translator anchors this attestation from the event (anchor_tx_hash
            # stays empty until it reports back).
            await tx.emit(
                Event(
                    TOPIC_CERTIFICATION_ATTESTED,
                    key=space.id,
                    occurred_at=now,
                    payload={
                        "space_id": space.id,
                        "owner_id": space.owner_id,
                        "certification_id": cert.id,
                        "name": cert.name,
                        "issuer": cert.issuer,
                        "reference": cert.reference,
                        "valid_until": _iso(cert.valid_until) if cert.valid_until else None,
                        "child_protection": child_protection,
                        "attested_by": principal.user_id,
                        "attested_at": _iso(now),
                    },
                )
            )
            space = await self._space(tx.repo, space.id, "space_id")
            return space, _cert(space, cert.id)

    async def review_verification(
        self, principal: Principal, space_id: str, approve: bool, note: str
    ) -> Space:
        self._require_admin(principal, "review verifications")
        note = validate_text(note, "note", maximum=MAX_NOTE)
        now = self.clock.now()
        async with self._write() as tx:
            space = await self._space(tx.repo, space_id, "space_id", lock=True)
            if space.verification_status is not VerificationStatus.PENDING:
                raise FailedPrecondition(
                    f"verification is {space.verification_status}, not pending"
                )
            attested = [c for c in space.certifications if c.attested and c.valid_at(now)]
            if approve and not attested:
                raise FailedPrecondition(
                    "attest at least one unexpired certification before approving"
                )
            status = VerificationStatus.VERIFIED if approve else VerificationStatus.REJECTED
            await tx.repo.set_verification(
                space.id, status, now=now, note=note, reviewed_by=principal.user_id
            )
            await tx.emit(
                Event(
                    TOPIC_SPACE_VERIFIED if approve else TOPIC_SPACE_VERIFICATION_REJECTED,
                    key=space.id,
                    occurred_at=now,
                    payload={
                        "space_id": space.id,
                        "owner_id": space.owner_id,
                        "reviewed_by": principal.user_id,
                        "reviewed_at": _iso(now),
                        "note": note,
                        "certification_ids": [c.id for c in attested],
                        "child_safe": approve and any(c.child_protection for c in attested),
                    },
                )
            )
            return await self._space(tx.repo, space.id, "space_id")

    # -- reservations ---------------------------------------------------------------------

    def _participants_for(
        self, principal: Principal, tutor_id: str, student_id: str
    ) -> tuple[str, str]:
        tutor = _optional_id(tutor_id, "tutor_id") or principal.user_id
        student = _optional_id(student_id, "student_id")
        if student and student == tutor:
            raise ValidationError("student_id", "must differ from tutor_id")
        return tutor, student

    async def create_reservation(self, principal: Principal, data: ReservationInput) -> Reservation:
        tutor, student = self._participants_for(principal, data.tutor_id, data.student_id)
        if principal.user_id not in (tutor, student) and not principal.is_admin:
            raise PermissionDenied("you may only book for yourself, as its tutor or student")
        reservation, _ = await self._book(principal, data, tutor, student, subject=None)
        return reservation

    async def _book(
        self,
        principal: Principal,
        data: ReservationInput,
        tutor: str,
        student: str,
        *,
        subject: str | None,
        class_id: str = "",
    ) -> tuple[Reservation, TutorSession | None]:
        """Reserve (and with `subject`, book a tutor session) in one transaction."""
        _require_id(data.space_id, "space_id")
        request_id = validate_request_id(data.request_id)
        now = self.clock.now()
        start, end = validate_window(data.start_time, data.end_time, "slot")
        if request_id:
            # Before the time checks: a retry after the start still gets its reservation.
            async with self._read() as repo:
                replay = await self._replay(repo, principal, request_id, data, start, end)
            if replay is not None:
                return replay
        start, end = validate_booking_slot(start, end, now)
        try:
            async with self._write() as tx:
                space = await self._space(tx.repo, data.space_id, "space_id")
                if not is_open_for(space.availability, space.time_zone, start, end):
                    raise FailedPrecondition(
                        f"the space is not open for the whole slot "
                        f"(opening hours are in {space.time_zone})"
                    )
                if SAFETY_GUARDIAN_PRESENT in data.safety_requirements and not space.child_safe(
                    now
                ):
                    raise FailedPrecondition(
                        "the space is not child-safe: minors may only book child-safe spaces"
                    )
                session_id = new_id() if subject is not None else ""
                reservation = Reservation(
                    id=new_id(),
                    space_id=space.id,
                    tutor_id=tutor,
                    student_id=student,
                    start_time=start,
                    end_time=end,
                    status=ReservationStatus.REQUESTED,
                    total_cost=reservation_cost(space.hourly_rate, start, end),
                    safety_requirements=tuple(dict.fromkeys(data.safety_requirements)),
                    created_by=principal.user_id,
                    created_at=now,
                    updated_at=now,
                    tutor_session_id=session_id,
                    request_id=request_id,
                )
                # The database refuses an overlap with an active reservation (no pre-check).
                await tx.repo.insert_reservation(reservation)
                session: TutorSession | None = None
                if subject is not None:
                    session = TutorSession(
                        id=session_id,
                        tutor_id=tutor,
                        student_id=student,
                        space_id=space.id,
                        reservation_id=reservation.id,
                        start_time=start,
                        end_time=end,
                        subject=subject,
                        class_id=class_id,
                        status=TutorSessionStatus.SCHEDULED,
                        created_at=now,
                    )
                    await tx.repo.insert_session(session)
                    await tx.emit(
                        _session_event(TOPIC_TUTOR_SESSION_BOOKED, session, now, principal)
                    )
                await tx.emit(_reservation_event(reservation, space.owner_id))
                session_ = tx.repo.session
                for event in await invite_named(
                    self.invitations, session_, principal, reservation, now
                ):
                    await tx.emit(event)
                [reservation] = await with_reservation_consent(
                    self.invitations, session_, [reservation]
                )
                if session is not None:
                    [session] = await with_session_consent(self.invitations, session_, [session])
                return reservation, session
        except IntegrityError as exc:
            overlap = violated_constraint(exc) == NO_OVERLAP_CONSTRAINT
            if request_id and (overlap or is_unique_violation(exc)):
                # A concurrent retry of this very request may have won (whichever of the
                # two constraints the database checked first): answer with its result.
                async with self._read() as repo:
                    replay = await self._replay(repo, principal, request_id, data, start, end)
                if replay is not None:
                    return replay
            if overlap:
                raise AlreadyExists("slot already booked") from exc
            raise

    async def _replay(
        self,
        repo: MarketplaceRepository,
        principal: Principal,
        request_id: str,
        data: ReservationInput,
        start: datetime,
        end: datetime,
    ) -> tuple[Reservation, TutorSession | None] | None:
        found = await repo.reservation_by_request(principal.user_id, request_id)
        if found is None:
            return None
        if (found.space_id, found.start_time, found.end_time) != (data.space_id, start, end):
            raise ValidationError("request_id", "was already used for a different reservation")
        session = await repo.get_session(found.tutor_session_id) if found.tutor_session_id else None
        [found] = await with_reservation_consent(self.invitations, repo.session, [found])
        if session is not None:
            [session] = await with_session_consent(self.invitations, repo.session, [session])
        return found, session

    def _can_cancel(self, principal: Principal, r: Reservation, space: Space) -> bool:
        return (
            principal.user_id in r.participants()
            or principal.user_id == space.owner_id
            or principal.is_admin
        )

    async def confirm_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        now = self.clock.now()
        async with self._write() as tx:
            r = await self._reservation(tx.repo, reservation_id)
            space = await self._space(tx.repo, r.space_id, "reservation_id")
            self._require_owner(principal, space, "confirm reservations")
            if r.status is ReservationStatus.CONFIRMED:
                [r] = await with_reservation_consent(self.invitations, tx.repo.session, [r])
                return r
            if r.status is not ReservationStatus.REQUESTED:
                raise FailedPrecondition(f"reservation is {r.status}, not requested")
            if now >= r.end_time:
                raise FailedPrecondition("the reservation has already ended")
            confirmed = replace(r, status=ReservationStatus.CONFIRMED, updated_at=now)
            await tx.repo.update_reservation(confirmed)
            await tx.emit(_reservation_event(confirmed, space.owner_id))
            [confirmed] = await with_reservation_consent(
                self.invitations, tx.repo.session, [confirmed]
            )
            return confirmed

    async def cancel_reservation(
        self, principal: Principal, reservation_id: str, reason: str
    ) -> tuple[Reservation, TutorSession | None]:
        reason = validate_text(reason, "reason", maximum=MAX_REASON)
        async with self._write() as tx:
            r = await self._reservation(tx.repo, reservation_id)
            return await self._cancel(tx, principal, r, reason)

    async def _cancel(
        self, tx: _Tx, principal: Principal, r: Reservation, reason: str
    ) -> tuple[Reservation, TutorSession | None]:
        now = self.clock.now()
        space = await self._space(tx.repo, r.space_id, "reservation_id")
        if not self._can_cancel(principal, r, space):
            raise PermissionDenied(
                "only the reservation's tutor, student, booker, the space owner or an admin "
                "may cancel it"
            )
        session = await tx.repo.get_session(r.tutor_session_id) if r.tutor_session_id else None
        if r.status is ReservationStatus.CANCELLED:
            return await self._consent(tx.repo, r, session)  # a retry
        if r.status is ReservationStatus.COMPLETED:
            raise FailedPrecondition("a completed reservation cannot be cancelled")
        outcome, refund = cancellation_refund(
            r.total_cost,
            r.start_time,
            now,
            by_owner_or_admin=principal.user_id == space.owner_id or principal.is_admin,
        )
        cancelled = replace(
            r,
            status=ReservationStatus.CANCELLED,
            updated_at=now,
            cancellation=Cancellation(principal.user_id, now, reason, outcome, refund),
        )
        await tx.repo.update_reservation(cancelled)
        await tx.emit(_reservation_event(cancelled, space.owner_id))
        if session is not None and session.status is TutorSessionStatus.SCHEDULED:
            await tx.repo.set_session_status(session.id, TutorSessionStatus.CANCELLED, now)
            session = replace(session, status=TutorSessionStatus.CANCELLED)
            await tx.emit(_session_event(TOPIC_TUTOR_SESSION_CANCELLED, session, now, principal))
        for event in await cancel_invitations(self.invitations, tx.repo.session, r, now):
            await tx.emit(event)
        return await self._consent(tx.repo, cancelled, session)

    async def complete_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        async with self._write() as tx:
            r = await self._reservation(tx.repo, reservation_id)
            space = await self._space(tx.repo, r.space_id, "reservation_id")
            if principal.user_id not in (space.owner_id, r.tutor_id) and not principal.is_admin:
                raise PermissionDenied("only the space owner or the tutor may complete it")
            if r.tutor_session_id and r.status is not ReservationStatus.COMPLETED:
                raise FailedPrecondition(
                    f"this reservation holds tutor session {r.tutor_session_id}: "
                    "its tutor completes it with CompleteTutorSession"
                )
            return await self._complete(tx, r, space)

    async def _complete(self, tx: _Tx, r: Reservation, space: Space) -> Reservation:
        now = self.clock.now()
        if r.status is ReservationStatus.COMPLETED:
            return r  # a retry
        if r.status is not ReservationStatus.CONFIRMED:
            raise FailedPrecondition(f"reservation is {r.status}, not confirmed")
        if now < r.end_time:
            raise FailedPrecondition("the reservation has not ended yet")
        await require_consent(self.invitations, tx.repo.session, r)
        completed = replace(r, status=ReservationStatus.COMPLETED, updated_at=now)
        await tx.repo.update_reservation(completed)
        await tx.emit(_reservation_event(completed, space.owner_id))
        [completed] = await with_reservation_consent(self.invitations, tx.repo.session, [completed])
        return completed

    async def get_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        async with self._read() as repo:
            _require_id(reservation_id, "reservation_id")
            r = await repo.get_reservation(reservation_id)
            if r is None:
                raise NotFound(f"reservation {reservation_id} not found")
            space = await self._space(repo, r.space_id, "reservation_id")
            if not self._can_cancel(principal, r, space):
                raise PermissionDenied("not a participant of this reservation nor the space owner")
            [r] = await with_reservation_consent(self.invitations, repo.session, [r])
        return r

    async def list_reservations(
        self,
        principal: Principal,
        *,
        space_id: str,
        statuses: Sequence[ReservationStatus],
        window: tuple[datetime | None, datetime | None] | None,
        requested_size: int,
        page_token: str,
    ) -> Page[Reservation]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        bounds = validate_window(*window, "window") if window is not None else None
        async with self._read() as repo:
            if space_id:
                space = await self._space(repo, space_id, "space_id")
                self._require_owner(principal, space, "list its reservations")
            found = await repo.list_reservations(
                space_id=space_id,
                participant="" if space_id else principal.user_id,
                statuses=[str(s) for s in statuses],
                window=bounds,
                cursor=cursor,
                limit=size + 1,
            )
            found = await with_reservation_consent(self.invitations, repo.session, found)
        if len(found) > size:
            last = found[size - 1]
            return Page(found[:size], encode_cursor(last.start_time, last.id))
        return Page(found)

    async def authorize_watch(self, principal: Principal, space_id: str) -> Space | None:
        """Checks a WatchReservations subscription up front; the stream's predicate then
        filters each event (see `watch_predicate`)."""
        if not space_id:
            return None
        async with self._read() as repo:
            space = await self._space(repo, space_id, "space_id")
        self._require_owner(principal, space, "watch its reservations")
        return space

    @staticmethod
    def watch_predicate(principal: Principal, space_id: str) -> Callable[[Event], bool]:
        """Which reservation events a watcher may see: those of the space it owns (checked
        by `authorize_watch`, and re-checked here against the owner named in the event),
        or, without a space, those where it is the tutor, student or booker."""

        def accept(event: Event) -> bool:
            if event.topic not in RESERVATION_TOPICS:
                return False
            data = event.payload.get("reservation") or {}
            if space_id:
                return bool(
                    data.get("space_id") == space_id
                    and (
                        principal.is_admin
                        or event.payload.get("space_owner_id") == principal.user_id
                    )
                )
            return principal.user_id in (
                data.get("tutor_id"),
                data.get("student_id"),
                data.get("created_by"),
            )

        return accept

    # -- tutor sessions -------------------------------------------------------------------

    async def book_tutor_session(
        self, principal: Principal, data: SessionInput
    ) -> tuple[TutorSession, Reservation]:
        tutor, _ = self._participants_for(principal, data.tutor_id, "")
        student = _require_id(data.student_id, "student_id")
        if student == tutor:
            raise ValidationError("student_id", "must differ from tutor_id")
        if principal.is_admin:
            pass
        elif principal.user_id != tutor:
            raise PermissionDenied("only the tutor (or an admin) books a tutor session")
        elif not principal.has_role(Role.TUTOR):
            raise PermissionDenied("requires role tutor")
        subject = validate_text(data.subject, "subject", maximum=MAX_SUBJECT, required=True)
        class_id = _optional_id(data.class_id, "class_id")
        request_id = validate_request_id(data.request_id)
        reservation, session = await self._book(
            principal,
            ReservationInput(
                space_id=data.space_id,
                tutor_id=tutor,
                student_id=student,
                start_time=data.start_time,
                end_time=data.end_time,
                safety_requirements=data.safety_requirements,
                # Its own namespace: never collides with a CreateReservation request_id.
                request_id=f"tutor-session:{request_id}" if request_id else "",
            ),
            tutor,
            student,
            subject=subject,
            class_id=class_id,
        )
        if session is None:
            raise ValidationError("request_id", "was already used for a plain reservation")
        return session, reservation

    async def _session(self, repo: MarketplaceRepository, session_id: str) -> TutorSession:
        _require_id(session_id, "session_id")
        session = await repo.get_session(session_id)
        if session is None:
            raise NotFound(f"tutor session {session_id} not found")
        return session

    async def complete_tutor_session(self, principal: Principal, session_id: str) -> TutorSession:
        now = self.clock.now()
        async with self._write() as tx:
            session = await self._session(tx.repo, session_id)
            if principal.user_id != session.tutor_id and not principal.is_admin:
                raise PermissionDenied("only the session's tutor may complete it")
            if session.status is TutorSessionStatus.COMPLETED:
                [session] = await with_session_consent(self.invitations, tx.repo.session, [session])
                return session  # a retry
            if session.status is TutorSessionStatus.CANCELLED:
                raise FailedPrecondition("the session was cancelled")
            r = await self._reservation(tx.repo, session.reservation_id)
            space = await self._space(tx.repo, r.space_id, "session_id")
            await self._complete(tx, r, space)
            await tx.repo.set_session_status(session.id, TutorSessionStatus.COMPLETED, now)
            [completed] = await with_session_consent(
                self.invitations,
                tx.repo.session,
                [replace(session, status=TutorSessionStatus.COMPLETED)],
            )
            invitation = await self.invitations.find(
                tx.repo.session, InvitationKind.TUTOR_SESSION, session.id, session.student_id
            )
            await tx.emit(
                _session_event(
                    TOPIC_TUTOR_SESSION_COMPLETED,
                    completed,
                    now,
                    principal,
                    student_consent=student_consent(r, invitation),
                )
            )
            return completed

    async def cancel_tutor_session(
        self, principal: Principal, session_id: str, reason: str
    ) -> tuple[TutorSession, Reservation]:
        reason = validate_text(reason, "reason", maximum=MAX_REASON)
        async with self._write() as tx:
            session = await self._session(tx.repo, session_id)
            r = await self._reservation(tx.repo, session.reservation_id)
            if session.status is TutorSessionStatus.COMPLETED:
                raise FailedPrecondition("a completed session cannot be cancelled")
            cancelled, updated = await self._cancel(tx, principal, r, reason)
            return updated or session, cancelled

    async def get_tutor_session(self, principal: Principal, session_id: str) -> TutorSession:
        async with self._read() as repo:
            session = await self._session(repo, session_id)
            [session] = await with_session_consent(self.invitations, repo.session, [session])
        if principal.user_id not in (session.tutor_id, session.student_id) and not (
            principal.is_admin
        ):
            raise PermissionDenied("only the session's tutor or student may read it")
        return session

    async def list_tutor_sessions(
        self,
        principal: Principal,
        *,
        tutor_id: str,
        student_id: str,
        space_id: str,
        statuses: Sequence[TutorSessionStatus],
        requested_size: int,
        page_token: str,
    ) -> Page[TutorSession]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        _optional_id(tutor_id, "tutor_id")
        _optional_id(student_id, "student_id")
        participant = ""
        async with self._read() as repo:
            if space_id:
                space = await self._space(repo, space_id, "space_id")
                if principal.user_id != space.owner_id and not principal.is_admin:
                    participant = principal.user_id
            elif principal.user_id not in (tutor_id, student_id) and not principal.is_admin:
                participant = principal.user_id
            found = await repo.list_sessions(
                tutor_id=tutor_id,
                student_id=student_id,
                space_id=space_id,
                participant=participant,
                statuses=[str(s) for s in statuses],
                cursor=cursor,
                limit=size + 1,
            )
            found = await with_session_consent(self.invitations, repo.session, found)
        if len(found) > size:
            last = found[size - 1]
            return Page(found[:size], encode_cursor(last.start_time, last.id))
        return Page(found)

    # -- invitations (issue 9) -------------------------------------------------------------

    async def list_invitations(
        self,
        caller: Principal,
        *,
        as_inviter: bool,
        statuses: Sequence[InvitationStatus],
        requested_size: int,
        page_token: str,
    ) -> tuple[list[Invitation], str]:
        async with self._read() as repo:
            return await list_page(
                self.invitations,
                repo.session,
                caller,
                as_inviter=as_inviter,
                statuses=statuses,
                requested_size=requested_size,
                page_token=page_token,
            )

    async def respond_to_invitation(
        self, caller: Principal, invitation_id: str, accept: bool
    ) -> Invitation:
        """The invitee's answer. Declining (also after accepting) cancels the reservation
        and its tutor session, as a cancellation by the invitee."""
        now = self.clock.now()
        async with self._write() as tx:
            invitation, changed = await self.invitations.respond(
                tx.repo.session, invitation_id, caller.user_id, accept, now
            )
            if not changed:
                return invitation
            await tx.emit(self.invitations.event(invitation, now))
            if invitation.status is InvitationStatus.DECLINED:
                r = await self._invited_reservation(tx.repo, invitation)
                if r.status in ACTIVE_STATUSES:
                    await self._cancel(
                        tx, caller, r, f"the {invitation.role} declined the invitation"
                    )
            return invitation

    async def _invited_reservation(
        self, repo: MarketplaceRepository, invitation: Invitation
    ) -> Reservation:
        reservation_id = invitation.subject_id
        if invitation.kind is InvitationKind.TUTOR_SESSION:
            reservation_id = (await self._session(repo, invitation.subject_id)).reservation_id
        return await self._reservation(repo, reservation_id)

    async def _consent(
        self, repo: MarketplaceRepository, r: Reservation, session: TutorSession | None
    ) -> tuple[Reservation, TutorSession | None]:
        [r] = await with_reservation_consent(self.invitations, repo.session, [r])
        if session is not None:
            [session] = await with_session_consent(self.invitations, repo.session, [session])
        return r, session

    # -- ratings --------------------------------------------------------------------------

    async def rate_space(
        self, principal: Principal, data: RatingInput
    ) -> tuple[SpaceRating, Space]:
        scores = [
            validate_rating_score(getattr(data, name), f"rating.{name}")
            for name in ("overall", "safety", "cleanliness", "accessibility")
        ]
        comment = validate_text(data.comment, "rating.comment", maximum=MAX_COMMENT)
        now = self.clock.now()
        try:
            async with self._write() as tx:
                space = await self._space(tx.repo, data.space_id, "space_id")
                r = await self._reservation(tx.repo, data.reservation_id)
                if r.space_id != space.id:
                    raise ValidationError("reservation_id", "is not a reservation of this space")
                if principal.user_id not in r.participants():
                    raise PermissionDenied("only a participant of the reservation may rate it")
                if principal.user_id == space.owner_id:
                    raise PermissionDenied("owners cannot rate their own space")
                if r.status is not ReservationStatus.COMPLETED:
                    raise FailedPrecondition("only a completed reservation can be rated")
                rating = SpaceRating(
                    id=new_id(),
                    space_id=space.id,
                    rater_id=principal.user_id,
                    reservation_id=r.id,
                    overall=scores[0],
                    safety=scores[1],
                    cleanliness=scores[2],
                    accessibility=scores[3],
                    comment=comment,
                    created_at=now,
                )
                await tx.repo.insert_rating(rating)
                await tx.repo.add_rating_to_summary(space.id, rating)
                await tx.emit(
                    Event(
                        TOPIC_SPACE_RATED,
                        key=space.id,
                        occurred_at=now,
                        payload={
                            "rating_id": rating.id,
                            "space_id": space.id,
                            "rater_id": rating.rater_id,
                            "reservation_id": r.id,
                            "overall": rating.overall,
                            "safety": rating.safety,
                            "cleanliness": rating.cleanliness,
                            "accessibility": rating.accessibility,
                            "created_at": _iso(now),
                        },
                    )
                )
                updated = await self._space(tx.repo, space.id, "space_id")
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise AlreadyExists("you already rated this reservation") from exc
            raise
        return rating, updated

    async def list_ratings(
        self, space_id: str, requested_size: int, page_token: str
    ) -> Page[SpaceRating]:
        size = page_size(requested_size)
        cursor = decode_cursor(page_token)
        async with self._read() as repo:
            space = await self._space(repo, space_id, "space_id")
            found = await repo.list_ratings(space.id, cursor, size + 1)
        if len(found) > size:
            last = found[size - 1]
            return Page(found[:size], encode_cursor(last.created_at, last.id))
        return Page(found)


# -- helpers --------------------------------------------------------------------------------


class _Tx:
    """One write transaction: the repository and the events to enqueue in it."""

    def __init__(self, repo: MarketplaceRepository) -> None:
        self.repo = repo
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        """Enqueue `event` in the outbox, in this transaction."""
        await enqueue(self.repo.session, outbox, event)
        self.events.append(event)


def _cert(space: Space, cert_id: str) -> Certification:
    return next(c for c in space.certifications if c.id == cert_id)


def _reservation_event(r: Reservation, owner_id: str) -> Event:
    """`marketplace.reservation_<status>`: the whole reservation and the space's owner."""
    return Event(
        TOPIC_RESERVATION[r.status],
        key=r.space_id,
        occurred_at=r.updated_at,
        payload={"kind": str(r.status), "space_owner_id": owner_id, "reservation": r.to_json()},
    )


def _session_event(
    topic: str, s: TutorSession, now: datetime, by: Principal, *, student_consent: str = ""
) -> Event:
    """The tutor session events. `marketplace.tutor_session_completed` is what the
    learning/passport services turn into an interaction in both passports and what opens
    the reputation rating window; its `student_consent` ("self": the student booked it,
    "accepted": they accepted the invitation) is what reputation checks before opening
    it (a rating needs a completed session both sides agreed to)."""
    return Event(
        topic,
        key=s.id,
        occurred_at=now,
        payload={
            "session_id": s.id,
            "tutor_id": s.tutor_id,
            "student_id": s.student_id,
            "space_id": s.space_id,
            "reservation_id": s.reservation_id,
            "start_time": _iso(s.start_time),
            "end_time": _iso(s.end_time),
            "subject": s.subject,
            "class_id": s.class_id,
            "status": str(s.status),
            "actor_id": by.user_id,
            "occurred_at": _iso(now),
            **({"student_consent": student_consent} if student_consent else {}),
        },
    )


__all__ = [
    "RESERVATION_TOPICS",
    "MarketplaceService",
    "Money",
    "RatingInput",
    "ReservationInput",
    "SessionInput",
    "SpaceInput",
    "SpaceUpdate",
]
