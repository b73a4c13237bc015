"""The keiko.learning.v1.LearningService gRPC servicer: one thin servicer per capability
(decode, authorize through the use cases, encode), composed here.

Authentication: every RPC takes a Keiko access token (`authorization: Bearer ...`),
except ImportWebhook (authenticated by the webhook source's own signature / Basic auth)
and the xAPI RPCs, which also accept an LRS client's credentials (see
`services.learning.clients.servicer`).
"""

from __future__ import annotations

from services.api.keiko.learning import v1 as pb
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.invitations.rpc import InvitationRpcs
from services.kit.runtime import ServiceRuntime
from services.learning.activities.servicer import ActivitiesServicer
from services.learning.clients.servicer import (
    LRS_METADATA,
    LRS_METHODS,
    ClientsServicer,
    lrs_auth_interceptor,
)
from services.learning.common.storage import outbox
from services.learning.documents.servicer import DocumentsServicer
from services.learning.hierarchy.servicer import HierarchyServicer
from services.learning.interactions.servicer import InteractionsServicer, interaction_to_pb
from services.learning.links.servicer import LinksServicer
from services.learning.service import LearningService
from services.learning.sessions.servicer import SessionsServicer
from services.learning.statements.servicer import StatementsServicer, anchor_consumer
from services.learning.tutor_sessions import JOB_NAME as TUTOR_SESSIONS_JOB
from services.learning.tutor_sessions import tutor_session_consumer
from services.learning.webhooks.servicer import WebhooksServicer


class LearningServicer(
    InvitationRpcs,
    StatementsServicer,
    DocumentsServicer,
    ActivitiesServicer,
    HierarchyServicer,
    SessionsServicer,
    InteractionsServicer,
    ClientsServicer,
    LinksServicer,
    WebhooksServicer,
    pb.LearningServiceBase,
):
    public_methods = frozenset({"ImportWebhook", *LRS_METHODS})

    def __init__(self, service: LearningService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout
        # ListInvitations, RespondToInvitation, WatchInvitations (the shared mixin).
        self.invitation_owner = service.sessions
        self.invitation_pb = pb
        self.interceptors = [lrs_auth_interceptor(service.clients)]


def build_learning_servicer(runtime: ServiceRuntime) -> LearningServicer:
    """The servicer on the runtime's database, clock and fanout. Registers three background
    jobs: `learning.outbox` (the relay publishing `learning.interaction_recorded`),
    `learning.anchors` (keeps each statement's anchor state from the translator's events)
    and `learning.tutor_sessions` (a completed marketplace tutor session becomes a statement
    in the student's and the tutor's record, see `services.learning.tutor_sessions`)."""
    service = LearningService(runtime.database, runtime.clock)
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    service.on_commit.append(relay.notify)
    runtime.run_in_background("learning.outbox", relay.run)
    runtime.run_in_background("learning.anchors", anchor_consumer(service, runtime.event_bus))
    runtime.run_in_background(
        TUTOR_SESSIONS_JOB, tutor_session_consumer(service, runtime.event_bus, runtime.clock)
    )
    return LearningServicer(service, runtime.fanout)


__all__ = [
    "LRS_METADATA",
    "LearningServicer",
    "build_learning_servicer",
    "interaction_to_pb",
    "lrs_auth_interceptor",
]
