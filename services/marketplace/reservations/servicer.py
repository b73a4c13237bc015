"""gRPC: reservation RPCs and the WatchReservations stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import betterproto

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import Unavailable
from services.kit.events.fanout import EventFanout
from services.kit.invitations.rpc import status_to_pb
from services.marketplace.common.servicer import (
    known_names,
    money_to_pb,
    statuses_from_pb,
    time_from_pb,
)
from services.marketplace.reservations.domain import (
    RESERVATION_TOPICS,
    Reservation,
    ReservationInput,
    ReservationStatus,
)

if TYPE_CHECKING:
    from services.marketplace.service import MarketplaceService

_TO_PB_STATUS = {s: pb.ReservationStatus.from_string(s.name) for s in ReservationStatus}
_FROM_PB_STATUS = {int(v): k for k, v in _TO_PB_STATUS.items()}
_TO_PB_EVENT_KIND = {s: pb.ReservationEventKind.from_string(s.name) for s in ReservationStatus}


class ReservationsServicer:
    service: MarketplaceService
    fanout: EventFanout | None

    async def create_reservation(
        self, create_reservation_request: pb.CreateReservationRequest
    ) -> pb.CreateReservationResponse:
        caller = current_principal()
        r = create_reservation_request
        reservation = await self.service.reservations.create_reservation(
            caller,
            ReservationInput(
                space_id=r.space_id,
                tutor_id=r.tutor_id,
                student_id=r.student_id,
                start_time=time_from_pb(r.start_time),
                end_time=time_from_pb(r.end_time),
                safety_requirements=safety_from_pb(r.safety_requirements),
                request_id=r.request_id,
            ),
        )
        return pb.CreateReservationResponse(reservation=reservation_to_pb(reservation))

    async def confirm_reservation(
        self, confirm_reservation_request: pb.ConfirmReservationRequest
    ) -> pb.ConfirmReservationResponse:
        caller = current_principal()
        reservation = await self.service.reservations.confirm_reservation(
            caller, confirm_reservation_request.reservation_id
        )
        return pb.ConfirmReservationResponse(reservation=reservation_to_pb(reservation))

    async def cancel_reservation(
        self, cancel_reservation_request: pb.CancelReservationRequest
    ) -> pb.CancelReservationResponse:
        caller = current_principal()
        r = cancel_reservation_request
        reservation, _ = await self.service.reservations.cancel_reservation(
            caller, r.reservation_id, r.reason
        )
        return pb.CancelReservationResponse(reservation=reservation_to_pb(reservation))

    async def complete_reservation(
        self, complete_reservation_request: pb.CompleteReservationRequest
    ) -> pb.CompleteReservationResponse:
        caller = current_principal()
        reservation = await self.service.reservations.complete_reservation(
            caller, complete_reservation_request.reservation_id
        )
        return pb.CompleteReservationResponse(reservation=reservation_to_pb(reservation))

    async def get_reservation(
        self, get_reservation_request: pb.GetReservationRequest
    ) -> pb.GetReservationResponse:
        caller = current_principal()
        reservation = await self.service.reservations.get_reservation(
            caller, get_reservation_request.reservation_id
        )
        return pb.GetReservationResponse(reservation=reservation_to_pb(reservation))

    async def list_reservations(
        self, list_reservations_request: pb.ListReservationsRequest
    ) -> pb.ListReservationsResponse:
        caller = current_principal()
        r = list_reservations_request
        statuses = statuses_from_pb(r.statuses, _FROM_PB_STATUS, "reservation status")
        window = None
        if betterproto.serialized_on_wire(r.window):
            window = (time_from_pb(r.window.start_time), time_from_pb(r.window.end_time))
        page = await self.service.reservations.list_reservations(
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
        await self.service.reservations.authorize_watch(caller, space_id)
        if self.fanout is None:
            raise Unavailable("watching reservations is not available in this process")
        predicate = self.service.reservations.watch_predicate(caller, space_id)
        async with self.fanout.listen(RESERVATION_TOPICS, predicate) as events:
            async for event in events:
                reservation = Reservation.from_json(event.payload["reservation"])
                yield pb.WatchReservationsResponse(
                    kind=_TO_PB_EVENT_KIND[reservation.status],
                    reservation=reservation_to_pb(reservation),
                )


def safety_from_pb(values: list[pb.SafetyRequirement]) -> tuple[str, ...]:
    return tuple(known_names(values, "safety_requirements", "safety requirement"))


def reservation_to_pb(r: Reservation) -> pb.Reservation:
    message = pb.Reservation(
        id=r.id,
        space_id=r.space_id,
        tutor_id=r.tutor_id,
        student_id=r.student_id,
        start_time=r.start_time,
        end_time=r.end_time,
        status=_TO_PB_STATUS[r.status],
        total_cost=money_to_pb(r.total_cost),
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
            refund=money_to_pb(c.refund),
        )
    return message
