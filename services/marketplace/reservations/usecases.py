"""Reservation use cases.

- made by the tutor or the student named on it (or an admin); a tutor session is booked
  through the same path (`book` with a subject);
- confirmed by the space owner; cancelled by the tutor, the student, the booker, the space
  owner or an admin; completed (after the end) by the owner, the tutor or an admin; read
  by those and the owner;
- no double booking: the insert of an overlapping active reservation is refused by the
  database (exclusion constraint / trigger, see storage and the migration) and reported
  as ALREADY_EXISTS "slot already booked". There is deliberately no overlap pre-check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.db import is_unique_violation, violated_constraint
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.kit.events import Event
from services.kit.paging import Page, page_size
from services.marketplace.common.domain import (
    decode_cursor,
    optional_id,
    page_of,
    require_id,
    validate_request_id,
    validate_text,
    validate_window,
)
from services.marketplace.common.storage import new_id
from services.marketplace.common.usecases import MarketplaceContext, Tx, require_owner
from services.marketplace.invitations.consent import (
    cancel_invitations,
    invite_named,
    require_consent,
    with_reservation_consent,
)
from services.marketplace.reservations.domain import (
    MAX_REASON,
    NO_OVERLAP_CONSTRAINT,
    RESERVATION_TOPICS,
    SAFETY_GUARDIAN_PRESENT,
    Cancellation,
    Reservation,
    ReservationInput,
    ReservationStatus,
    cancellation_refund,
    reservation_cost,
    reservation_event,
    validate_booking_slot,
)
from services.marketplace.spaces.availability import is_open_for
from services.marketplace.spaces.domain import Space
from services.marketplace.storage import MarketplaceRepository
from services.marketplace.tutor_sessions.domain import (
    TOPIC_TUTOR_SESSION_BOOKED,
    TOPIC_TUTOR_SESSION_CANCELLED,
    TutorSession,
    TutorSessionStatus,
    session_event,
)


def participants_for(principal: Principal, tutor_id: str, student_id: str) -> tuple[str, str]:
    tutor = optional_id(tutor_id, "tutor_id") or principal.user_id
    student = optional_id(student_id, "student_id")
    if student and student == tutor:
        raise ValidationError("student_id", "must differ from tutor_id")
    return tutor, student


def involved(principal: Principal, r: Reservation, space: Space) -> bool:
    """The reservation's tutor, student or booker, the space owner, or an admin: who may
    read or cancel it."""
    return (
        principal.user_id in r.participants()
        or principal.user_id == space.owner_id
        or principal.is_admin
    )


class Reservations:
    def __init__(self, ctx: MarketplaceContext) -> None:
        self.ctx = ctx

    async def create_reservation(self, principal: Principal, data: ReservationInput) -> Reservation:
        tutor, student = participants_for(principal, data.tutor_id, data.student_id)
        if principal.user_id not in (tutor, student) and not principal.is_admin:
            raise PermissionDenied("you may only book for yourself, as its tutor or student")
        reservation, _ = await self.book(principal, data, tutor, student, subject=None)
        return reservation

    async def book(
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
        require_id(data.space_id, "space_id")
        request_id = validate_request_id(data.request_id)
        now = self.ctx.clock.now()
        start, end = validate_window(data.start_time, data.end_time, "slot")
        if request_id:
            # Before the time checks: a retry after the start still gets its reservation.
            async with self.ctx.read() as repo:
                replay = await self._replay(repo, principal, request_id, data, start, end)
            if replay is not None:
                return replay
        start, end = validate_booking_slot(start, end, now)
        try:
            async with self.ctx.write() as tx:
                space = await self.ctx.space(tx.repo, data.space_id, "space_id")
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
                        session_event(TOPIC_TUTOR_SESSION_BOOKED, session, now, principal)
                    )
                await tx.emit(reservation_event(reservation, space.owner_id))
                for event in await invite_named(
                    self.ctx.invitations, tx.repo.session, principal, reservation, now
                ):
                    await tx.emit(event)
                return await self.ctx.with_consent(tx.repo, reservation, session)
        except IntegrityError as exc:
            overlap = violated_constraint(exc) == NO_OVERLAP_CONSTRAINT
            if request_id and (overlap or is_unique_violation(exc)):
                # A concurrent retry of this very request may have won (whichever of the
                # two constraints the database checked first): answer with its result.
                async with self.ctx.read() as repo:
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
        return await self.ctx.with_consent(repo, found, session)

    async def confirm_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            r = await self.ctx.reservation(tx.repo, reservation_id)
            space = await self.ctx.space(tx.repo, r.space_id, "reservation_id")
            require_owner(principal, space, "confirm reservations")
            if r.status is ReservationStatus.CONFIRMED:
                [r] = await with_reservation_consent(self.ctx.invitations, tx.repo.session, [r])
                return r
            if r.status is not ReservationStatus.REQUESTED:
                raise FailedPrecondition(f"reservation is {r.status}, not requested")
            if now >= r.end_time:
                raise FailedPrecondition("the reservation has already ended")
            confirmed = replace(r, status=ReservationStatus.CONFIRMED, updated_at=now)
            await tx.repo.update_reservation(confirmed)
            await tx.emit(reservation_event(confirmed, space.owner_id))
            [confirmed] = await with_reservation_consent(
                self.ctx.invitations, tx.repo.session, [confirmed]
            )
            return confirmed

    async def cancel_reservation(
        self, principal: Principal, reservation_id: str, reason: str
    ) -> tuple[Reservation, TutorSession | None]:
        reason = validate_text(reason, "reason", maximum=MAX_REASON)
        async with self.ctx.write() as tx:
            r = await self.ctx.reservation(tx.repo, reservation_id)
            return await self.cancel_in(tx, principal, r, reason)

    async def cancel_in(
        self, tx: Tx, principal: Principal, r: Reservation, reason: str
    ) -> tuple[Reservation, TutorSession | None]:
        now = self.ctx.clock.now()
        space = await self.ctx.space(tx.repo, r.space_id, "reservation_id")
        if not involved(principal, r, space):
            raise PermissionDenied(
                "only the reservation's tutor, student, booker, the space owner or an admin "
                "may cancel it"
            )
        session = await tx.repo.get_session(r.tutor_session_id) if r.tutor_session_id else None
        if r.status is ReservationStatus.CANCELLED:
            return await self.ctx.with_consent(tx.repo, r, session)  # a retry
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
        await tx.emit(reservation_event(cancelled, space.owner_id))
        if session is not None and session.status is TutorSessionStatus.SCHEDULED:
            await tx.repo.set_session_status(session.id, TutorSessionStatus.CANCELLED, now)
            session = replace(session, status=TutorSessionStatus.CANCELLED)
            await tx.emit(session_event(TOPIC_TUTOR_SESSION_CANCELLED, session, now, principal))
        for event in await cancel_invitations(self.ctx.invitations, tx.repo.session, r, now):
            await tx.emit(event)
        return await self.ctx.with_consent(tx.repo, cancelled, session)

    async def complete_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        async with self.ctx.write() as tx:
            r = await self.ctx.reservation(tx.repo, reservation_id)
            space = await self.ctx.space(tx.repo, r.space_id, "reservation_id")
            if principal.user_id not in (space.owner_id, r.tutor_id) and not principal.is_admin:
                raise PermissionDenied("only the space owner or the tutor may complete it")
            if r.tutor_session_id and r.status is not ReservationStatus.COMPLETED:
                raise FailedPrecondition(
                    f"this reservation holds tutor session {r.tutor_session_id}: "
                    "its tutor completes it with CompleteTutorSession"
                )
            return await self.complete_in(tx, r, space)

    async def complete_in(self, tx: Tx, r: Reservation, space: Space) -> Reservation:
        now = self.ctx.clock.now()
        if r.status is ReservationStatus.COMPLETED:
            return r  # a retry
        if r.status is not ReservationStatus.CONFIRMED:
            raise FailedPrecondition(f"reservation is {r.status}, not confirmed")
        if now < r.end_time:
            raise FailedPrecondition("the reservation has not ended yet")
        await require_consent(self.ctx.invitations, tx.repo.session, r)
        completed = replace(r, status=ReservationStatus.COMPLETED, updated_at=now)
        await tx.repo.update_reservation(completed)
        await tx.emit(reservation_event(completed, space.owner_id))
        [completed] = await with_reservation_consent(
            self.ctx.invitations, tx.repo.session, [completed]
        )
        return completed

    async def get_reservation(self, principal: Principal, reservation_id: str) -> Reservation:
        async with self.ctx.read() as repo:
            require_id(reservation_id, "reservation_id")
            r = await repo.get_reservation(reservation_id)
            if r is None:
                raise NotFound(f"reservation {reservation_id} not found")
            space = await self.ctx.space(repo, r.space_id, "reservation_id")
            if not involved(principal, r, space):
                raise PermissionDenied("not a participant of this reservation nor the space owner")
            [r] = await with_reservation_consent(self.ctx.invitations, repo.session, [r])
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
        async with self.ctx.read() as repo:
            if space_id:
                space = await self.ctx.space(repo, space_id, "space_id")
                require_owner(principal, space, "list its reservations")
            found = await repo.list_reservations(
                space_id=space_id,
                participant="" if space_id else principal.user_id,
                statuses=[str(s) for s in statuses],
                window=bounds,
                cursor=cursor,
                limit=size + 1,
            )
            found = await with_reservation_consent(self.ctx.invitations, repo.session, found)
        return page_of(found, size, lambda r: (r.start_time, r.id))

    async def authorize_watch(self, principal: Principal, space_id: str) -> Space | None:
        """Checks a WatchReservations subscription up front; the stream's predicate then
        filters each event (see `watch_predicate`)."""
        if not space_id:
            return None
        async with self.ctx.read() as repo:
            space = await self.ctx.space(repo, space_id, "space_id")
        require_owner(principal, space, "watch its reservations")
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
