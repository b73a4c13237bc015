"""The keiko.marketplace.v1.MarketplaceService gRPC servicer: one thin servicer per capability
(decode, authorize through the use cases, encode), composed here.

Public RPCs (no access token): GetSpace, SearchSpaces, GetSpaceAvailability,
ListSpaceRatings. Every other RPC is authenticated by the host's interceptor and
authorized per object by the use cases (each capability's `usecases.py`).

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

from services.api.keiko.marketplace import v1 as pb
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.invitations.rpc import InvitationRpcs
from services.kit.runtime import ServiceRuntime
from services.marketplace.ratings.servicer import RatingsServicer
from services.marketplace.reservations.servicer import ReservationsServicer, reservation_to_pb
from services.marketplace.service import MarketplaceService
from services.marketplace.spaces.servicer import SpacesServicer, space_to_pb
from services.marketplace.storage import outbox
from services.marketplace.tutor_sessions.servicer import TutorSessionsServicer
from services.marketplace.verification.servicer import VerificationServicer


class MarketplaceServicer(
    InvitationRpcs,
    SpacesServicer,
    VerificationServicer,
    ReservationsServicer,
    TutorSessionsServicer,
    RatingsServicer,
    pb.MarketplaceServiceBase,
):
    public_methods = frozenset(
        {"GetSpace", "SearchSpaces", "GetSpaceAvailability", "ListSpaceRatings"}
    )

    def __init__(self, service: MarketplaceService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout
        # ListInvitations, RespondToInvitation, WatchInvitations (the shared mixin).
        self.invitation_owner = service.invitations
        self.invitation_pb = pb


def build_marketplace_servicer(runtime: ServiceRuntime) -> MarketplaceServicer:
    """Composition-root factory: the servicer on the runtime's database, clock and fanout,
    and the marketplace outbox relay registered as the background job
    `marketplace.outbox`."""
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    runtime.run_in_background("marketplace.outbox", relay.run)
    service = MarketplaceService(runtime.database, runtime.clock, on_commit=relay.notify)
    return MarketplaceServicer(service, runtime.fanout)


__all__ = [
    "MarketplaceServicer",
    "build_marketplace_servicer",
    "reservation_to_pb",
    "space_to_pb",
]
