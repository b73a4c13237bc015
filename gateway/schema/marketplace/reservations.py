"""Reservations over GraphQL: booking, confirming, cancelling, completing, reading, and the
`reservationChanged` subscription."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc, rpc_stream
from gateway.schema.invitations import InvitationStatus, status_from_pb
from gateway.schema.marketplace.common import (
    Money,
    TimeWindowInput,
    enum_name,
    pb_enums,
    signed_in,
)
from services.api.keiko.marketplace import v1 as pb


@strawberry.enum(description="Safety conditions a reservation requires.")
class SafetyRequirement(enum.Enum):
    BACKGROUND_CHECKED_TUTOR = "BACKGROUND_CHECKED_TUTOR"
    GUARDIAN_PRESENT = "GUARDIAN_PRESENT"
    VISIBLE_ROOM = "VISIBLE_ROOM"
    STAFF_ON_SITE = "STAFF_ON_SITE"
    FIRST_AID_AVAILABLE = "FIRST_AID_AVAILABLE"


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
class ReservationEventKind(enum.Enum):
    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


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
            status=ReservationStatus[enum_name(pb.ReservationStatus(r.status))],
            total_cost=Money.from_pb(r.total_cost),
            safety_requirements=[
                SafetyRequirement[enum_name(pb.SafetyRequirement(x))] for x in r.safety_requirements
            ],
            cancellation=Cancellation(
                cancelled_by=strawberry.ID(c.cancelled_by),
                cancelled_at=c.cancelled_at,
                reason=c.reason,
                outcome=RefundOutcome[enum_name(pb.RefundOutcome(c.outcome))],
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
class ReservationPage:
    reservations: list[Reservation]
    next_page_token: str | None


@strawberry.type
class ReservationEvent:
    kind: ReservationEventKind
    reservation: Reservation


@strawberry.input
class CreateReservationInput:
    space_id: strawberry.ID
    start_time: datetime
    end_time: datetime
    tutor_id: strawberry.ID | None = strawberry.field(default=None, description="Default: you.")
    student_id: strawberry.ID | None = None
    safety_requirements: list[SafetyRequirement] = strawberry.field(default_factory=list)
    request_id: str = ""


def safety_to_pb(values: list[SafetyRequirement]) -> list[pb.SafetyRequirement]:
    return pb_enums(pb.SafetyRequirement, values)


@strawberry.type
class ReservationsQuery:
    @strawberry.field(description="One reservation (its tutor, student or space owner).")
    async def reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        response = await rpc(
            signed_in(info).get_reservation(pb.GetReservationRequest(reservation_id=str(id)))
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
        request = pb.ListReservationsRequest(
            space_id=str(space_id or ""),
            statuses=pb_enums(pb.ReservationStatus, statuses),
            page_size=first,
            page_token=after,
        )
        if window is not None:
            request.window = window.to_pb()
        response = await rpc(signed_in(info).list_reservations(request))
        return ReservationPage(
            reservations=[Reservation.from_pb(r) for r in response.reservations],
            next_page_token=response.next_page_token or None,
        )


@strawberry.type
class ReservationsMutation:
    @strawberry.mutation(description="Request a space for a time window (no double booking).")
    async def create_reservation(self, info: Info, input: CreateReservationInput) -> Reservation:
        response = await rpc(
            signed_in(info).create_reservation(
                pb.CreateReservationRequest(
                    space_id=str(input.space_id),
                    tutor_id=str(input.tutor_id or ""),
                    student_id=str(input.student_id or ""),
                    start_time=input.start_time,
                    end_time=input.end_time,
                    safety_requirements=safety_to_pb(input.safety_requirements),
                    request_id=input.request_id,
                )
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Confirm a requested reservation (space owner).")
    async def confirm_reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        response = await rpc(
            signed_in(info).confirm_reservation(
                pb.ConfirmReservationRequest(reservation_id=str(id))
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Cancel a reservation; the policy decides the refund.")
    async def cancel_reservation(
        self, info: Info, id: strawberry.ID, reason: str = ""
    ) -> Reservation:
        response = await rpc(
            signed_in(info).cancel_reservation(
                pb.CancelReservationRequest(reservation_id=str(id), reason=reason)
            )
        )
        return Reservation.from_pb(response.reservation)

    @strawberry.mutation(description="Mark a confirmed reservation completed after its end.")
    async def complete_reservation(self, info: Info, id: strawberry.ID) -> Reservation:
        response = await rpc(
            signed_in(info).complete_reservation(
                pb.CompleteReservationRequest(reservation_id=str(id))
            )
        )
        return Reservation.from_pb(response.reservation)


@strawberry.type
class ReservationsSubscription:
    @strawberry.subscription(
        description="Reservation changes of a space you own, or (without spaceId) your own."
    )
    async def reservation_changed(
        self, info: Info, space_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ReservationEvent, None]:
        stream = signed_in(info).watch_reservations(
            pb.WatchReservationsRequest(space_id=str(space_id or ""))
        )
        async with aclosing(stream):  # type: ignore[type-var]
            async for reply in rpc_stream(stream):
                yield ReservationEvent(
                    kind=ReservationEventKind[enum_name(pb.ReservationEventKind(reply.kind))],
                    reservation=Reservation.from_pb(reply.reservation),
                )
