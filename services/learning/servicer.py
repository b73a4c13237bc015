"""The keiko.learning.v1.LearningService gRPC servicer: decode, authorize, call, encode.

Authentication:

* Every RPC takes a Keiko access token (`authorization: Bearer ...`), except:
* ImportWebhook, authenticated by the webhook source's own signature / Basic auth;
* the xAPI RPCs (RecordStatements, GetStatement, QueryStatements, VoidStatement) also
  accept an LRS client's credentials, forwarded by the gateway's /xapi resource as
  `x-keiko-lrs-authorization: Basic base64(key:secret)`. The proto has no RPC for it, so
  those four are declared public to the host's auth interceptor (which still verifies a
  bearer token when one is sent) and `lrs_auth_interceptor` binds the LRS client's
  principal; without either credential they answer UNAUTHENTICATED like any other RPC.
  The interceptor must be installed innermost, after the kit's auth interceptor
  (see `LearningServicer.interceptors`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import betterproto
import grpc

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.auth import acting_as, current_principal, optional_principal
from services.kit.errors import Unauthenticated, Unavailable, ValidationError
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import run_consumer
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.interceptors import AroundInterceptor, metadata_value
from services.kit.runtime import ServiceRuntime
from services.learning.service import (
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    TOPIC_INTERACTION_RECORDED,
    DeviceSignature,
    InteractionInput,
    LearningService,
    ScoreInput,
    WebhookKind,
    basic_credentials,
)
from services.learning.storage import StatementRow, outbox
from services.learning.tutor_sessions import JOB_NAME as TUTOR_SESSIONS_JOB
from services.learning.tutor_sessions import tutor_session_consumer

SERVICE = "keiko.learning.v1.LearningService"
LRS_METADATA = "x-keiko-lrs-authorization"
LRS_METHODS = frozenset({"RecordStatements", "GetStatement", "QueryStatements", "VoidStatement"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_KIND_TO_PB = {
    "question": common_pb.InteractionType.QUESTION,
    "answer": common_pb.InteractionType.ANSWER,
    "exercise": common_pb.InteractionType.EXERCISE,
    "discussion": common_pb.InteractionType.DISCUSSION,
    "evaluation": common_pb.InteractionType.EVALUATION,
    "feedback": common_pb.InteractionType.FEEDBACK,
}
_KIND_FROM_PB = {int(v): k for k, v in _KIND_TO_PB.items()}
_SESSION_TO_PB = {
    "human": pb.SessionType.HUMAN,
    "ai": pb.SessionType.AI,
    "group": pb.SessionType.GROUP,
}
_SESSION_FROM_PB = {int(v): k for k, v in _SESSION_TO_PB.items()}
_SOURCE_TO_PB = {
    WebhookKind.LEARNING_LOCKER: pb.WebhookSourceKind.LEARNING_LOCKER,
    WebhookKind.SCORM_CLOUD: pb.WebhookSourceKind.SCORM_CLOUD,
    WebhookKind.MOODLE: pb.WebhookSourceKind.MOODLE,
    WebhookKind.CANVAS: pb.WebhookSourceKind.CANVAS,
}
_SOURCE_FROM_PB = {int(v): k for k, v in _SOURCE_TO_PB.items()}


def _set(value: datetime) -> datetime | None:
    """A proto Timestamp left unset decodes as the epoch."""
    return None if value == _EPOCH else value


class LearningServicer(pb.LearningServiceBase):
    public_methods = frozenset({"ImportWebhook", *LRS_METHODS})

    def __init__(self, service: LearningService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout
        self.interceptors = [lrs_auth_interceptor(service)]

    # -- statements -----------------------------------------------------------------------

    async def record_statements(
        self, record_statements_request: pb.RecordStatementsRequest
    ) -> pb.RecordStatementsResponse:
        request = record_statements_request
        rows = await self.service.record_statements(
            current_principal(),
            list(request.statement_jsons),
            xapi_version=request.xapi_version,
            request_id=request.request_id,
        )
        return pb.RecordStatementsResponse(statements=[statement_to_pb(r) for r in rows])

    async def get_statement(
        self, get_statement_request: pb.GetStatementRequest
    ) -> pb.GetStatementResponse:
        row = await self.service.get_statement(
            current_principal(), get_statement_request.statement_id
        )
        return pb.GetStatementResponse(statement=statement_to_pb(row))

    async def query_statements(
        self, query_statements_request: pb.QueryStatementsRequest
    ) -> pb.QueryStatementsResponse:
        r = query_statements_request
        page = await self.service.query_statements(
            current_principal(),
            learner_id=r.learner_id,
            verb_id=r.verb_id,
            activity_id=r.activity_id,
            registration=r.registration,
            since=_set(r.since),
            until=_set(r.until),
            include_voided=r.include_voided,
            ascending=r.ascending,
            related_activities=r.related_activities,
            requested_size=r.page_size,
            page_token=r.page_token,
        )
        return pb.QueryStatementsResponse(
            statements=[statement_to_pb(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def void_statement(
        self, void_statement_request: pb.VoidStatementRequest
    ) -> pb.VoidStatementResponse:
        row = await self.service.void_statement(
            current_principal(),
            void_statement_request.statement_id,
            request_id=void_statement_request.request_id,
        )
        return pb.VoidStatementResponse(voiding_statement=statement_to_pb(row))

    # -- courses and classes ---------------------------------------------------------------

    async def create_course(
        self, create_course_request: pb.CreateCourseRequest
    ) -> pb.CreateCourseResponse:
        r = create_course_request
        course = await self.service.create_course(
            current_principal(),
            r.title,
            r.description,
            instructor_id=r.instructor_id,
            request_id=r.request_id,
        )
        return pb.CreateCourseResponse(course=course_to_pb(course))

    async def get_course(self, get_course_request: pb.GetCourseRequest) -> pb.GetCourseResponse:
        course = await self.service.get_course(current_principal(), get_course_request.course_id)
        return pb.GetCourseResponse(course=course_to_pb(course))

    async def list_courses(
        self, list_courses_request: pb.ListCoursesRequest
    ) -> pb.ListCoursesResponse:
        r = list_courses_request
        page = await self.service.list_courses(
            current_principal(), r.instructor_id, r.page_size, r.page_token
        )
        return pb.ListCoursesResponse(
            courses=[course_to_pb(c) for c in page.items], next_page_token=page.next_page_token
        )

    async def update_course(
        self, update_course_request: pb.UpdateCourseRequest
    ) -> pb.UpdateCourseResponse:
        r = update_course_request
        course = await self.service.update_course(
            current_principal(), r.course_id, title=r.title, description=r.description
        )
        return pb.UpdateCourseResponse(course=course_to_pb(course))

    async def create_class(
        self, create_class_request: pb.CreateClassRequest
    ) -> pb.CreateClassResponse:
        r = create_class_request
        klass = await self.service.create_class(
            current_principal(),
            r.title,
            r.description,
            course_id=r.course_id,
            request_id=r.request_id,
        )
        return pb.CreateClassResponse(class_=class_to_pb(klass))

    async def get_class(self, get_class_request: pb.GetClassRequest) -> pb.GetClassResponse:
        klass = await self.service.get_class(current_principal(), get_class_request.class_id)
        return pb.GetClassResponse(class_=class_to_pb(klass))

    async def list_classes(
        self, list_classes_request: pb.ListClassesRequest
    ) -> pb.ListClassesResponse:
        r = list_classes_request
        page = await self.service.list_classes(
            current_principal(), r.course_id, r.page_size, r.page_token
        )
        return pb.ListClassesResponse(
            classes=[class_to_pb(c) for c in page.items], next_page_token=page.next_page_token
        )

    async def update_class(
        self, update_class_request: pb.UpdateClassRequest
    ) -> pb.UpdateClassResponse:
        r = update_class_request
        klass = await self.service.update_class(
            current_principal(), r.class_id, title=r.title, description=r.description
        )
        return pb.UpdateClassResponse(class_=class_to_pb(klass))

    # -- sessions -------------------------------------------------------------------------

    async def create_tutorial_session(
        self, create_tutorial_session_request: pb.CreateTutorialSessionRequest
    ) -> pb.CreateTutorialSessionResponse:
        r = create_tutorial_session_request
        kind = _SESSION_FROM_PB.get(int(r.session_type))
        if kind is None:
            raise ValidationError("session_type", "must be HUMAN, AI or GROUP")
        session = await self.service.create_tutorial_session(
            current_principal(),
            tutor_kind=kind,
            student_ids=list(r.student_ids),
            tutor_id=r.tutor_id,
            class_id=r.class_id,
            topic=r.topic,
            scheduled_at=_set(r.scheduled_at),
            request_id=r.request_id,
        )
        return pb.CreateTutorialSessionResponse(session=tutorial_to_pb(session))

    async def get_tutorial_session(
        self, get_tutorial_session_request: pb.GetTutorialSessionRequest
    ) -> pb.GetTutorialSessionResponse:
        session = await self.service.get_tutorial_session(
            current_principal(), get_tutorial_session_request.session_id
        )
        return pb.GetTutorialSessionResponse(session=tutorial_to_pb(session))

    async def list_tutorial_sessions(
        self, list_tutorial_sessions_request: pb.ListTutorialSessionsRequest
    ) -> pb.ListTutorialSessionsResponse:
        r = list_tutorial_sessions_request
        page = await self.service.list_tutorial_sessions(
            current_principal(),
            class_id=r.class_id,
            tutor_id=r.tutor_id,
            student_id=r.student_id,
            requested=r.page_size,
            token=r.page_token,
        )
        return pb.ListTutorialSessionsResponse(
            sessions=[tutorial_to_pb(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def start_tutorial_session(
        self, start_tutorial_session_request: pb.StartTutorialSessionRequest
    ) -> pb.StartTutorialSessionResponse:
        session = await self.service.start_tutorial_session(
            current_principal(), start_tutorial_session_request.session_id
        )
        return pb.StartTutorialSessionResponse(session=tutorial_to_pb(session))

    async def end_tutorial_session(
        self, end_tutorial_session_request: pb.EndTutorialSessionRequest
    ) -> pb.EndTutorialSessionResponse:
        session = await self.service.end_tutorial_session(
            current_principal(), end_tutorial_session_request.session_id
        )
        return pb.EndTutorialSessionResponse(session=tutorial_to_pb(session))

    async def start_study_session(
        self, start_study_session_request: pb.StartStudySessionRequest
    ) -> pb.StartStudySessionResponse:
        r = start_study_session_request
        session = await self.service.start_study_session(
            current_principal(), r.class_id, r.topic, r.request_id
        )
        return pb.StartStudySessionResponse(session=study_to_pb(session))

    async def end_study_session(
        self, end_study_session_request: pb.EndStudySessionRequest
    ) -> pb.EndStudySessionResponse:
        session = await self.service.end_study_session(
            current_principal(), end_study_session_request.session_id
        )
        return pb.EndStudySessionResponse(session=study_to_pb(session))

    async def get_study_session(
        self, get_study_session_request: pb.GetStudySessionRequest
    ) -> pb.GetStudySessionResponse:
        session = await self.service.get_study_session(
            current_principal(), get_study_session_request.session_id
        )
        return pb.GetStudySessionResponse(session=study_to_pb(session))

    async def list_study_sessions(
        self, list_study_sessions_request: pb.ListStudySessionsRequest
    ) -> pb.ListStudySessionsResponse:
        r = list_study_sessions_request
        page = await self.service.list_study_sessions(
            current_principal(), r.learner_id, r.class_id, r.page_size, r.page_token
        )
        return pb.ListStudySessionsResponse(
            sessions=[study_to_pb(s) for s in page.items], next_page_token=page.next_page_token
        )

    # -- interactions ---------------------------------------------------------------------

    async def prepare_interaction(
        self, prepare_interaction_request: pb.PrepareInteractionRequest
    ) -> pb.PrepareInteractionResponse:
        prepared = await self.service.prepare_interaction(
            current_principal(), interaction_input(prepare_interaction_request.interaction)
        )
        return pb.PrepareInteractionResponse(
            statement_id=prepared.statement_id,
            statement_json=prepared.statement_json,
            canonical_statement_json=prepared.canonical_json,
        )

    async def record_interaction(
        self, record_interaction_request: pb.RecordInteractionRequest
    ) -> pb.RecordInteractionResponse:
        r = record_interaction_request
        device = None
        if betterproto.serialized_on_wire(r.device_signature):
            device = DeviceSignature(
                r.device_signature.signature_hex, r.device_signature.public_key_hex
            )
        row = await self.service.record_interaction(
            current_principal(),
            interaction_input(r.interaction),
            statement_id=r.statement_id,
            device_signature=device,
            request_id=r.request_id,
        )
        return pb.RecordInteractionResponse(interaction=interaction_to_pb(row))

    async def get_interaction(
        self, get_interaction_request: pb.GetInteractionRequest
    ) -> pb.GetInteractionResponse:
        row = await self.service.get_interaction(
            current_principal(), get_interaction_request.interaction_id
        )
        return pb.GetInteractionResponse(interaction=interaction_to_pb(row))

    async def list_interactions(
        self, list_interactions_request: pb.ListInteractionsRequest
    ) -> pb.ListInteractionsResponse:
        r = list_interactions_request
        types = []
        for i, t in enumerate(r.interaction_types):
            kind = _KIND_FROM_PB.get(int(t))
            if kind is None:
                raise ValidationError(f"interaction_types[{i}]", "must be a known interaction type")
            types.append(kind)
        page = await self.service.list_interactions(
            current_principal(),
            learner_id=r.learner_id,
            course_id=r.context.course_id,
            class_id=r.context.class_id,
            tutorial_session_id=r.context.tutorial_session_id,
            study_session_id=r.context.study_session_id,
            interaction_types=types,
            since=_set(r.since),
            until=_set(r.until),
            requested=r.page_size,
            token=r.page_token,
        )
        return pb.ListInteractionsResponse(
            interactions=[interaction_to_pb(x) for x in page.items],
            next_page_token=page.next_page_token,
        )

    async def watch_interactions(
        self, watch_interactions_request: pb.WatchInteractionsRequest
    ) -> AsyncIterator[pb.WatchInteractionsResponse]:
        caller = current_principal()
        learner = await self.service.authorize_watch(caller, watch_interactions_request.learner_id)
        if self.fanout is None:
            raise Unavailable("watching is not available in this process")

        def visible(event: Event) -> bool:
            return event.payload.get("learner_id") == learner

        topics = [TOPIC_INTERACTION_RECORDED, TOPIC_INTERACTION_ANCHORED, TOPIC_ANCHOR_FAILED]
        async with self.fanout.listen(topics, visible) as events:
            async for event in events:
                message = await self._watch_message(event)
                if message is not None:
                    yield message

    async def _watch_message(self, event: Event) -> pb.WatchInteractionsResponse | None:
        payload = event.payload
        statement_id = str(payload.get("statement_id") or payload.get("record_id") or "")
        try:
            row = await self.service.get_statement_for_watch(statement_id)
        except ValidationError:
            return None
        if row is None or row.interaction_type is None:
            return None
        interaction = interaction_to_pb(row)
        if event.topic == TOPIC_INTERACTION_RECORDED:
            return pb.WatchInteractionsResponse(
                kind=pb.InteractionEventKind(pb.InteractionEventKind.RECORDED),
                interaction=interaction,
            )
        interaction.anchor = anchor_from_event(event)
        return pb.WatchInteractionsResponse(
            kind=pb.InteractionEventKind(pb.InteractionEventKind.ANCHOR_CHANGED),
            interaction=interaction,
        )

    # -- LRS clients and webhook sources --------------------------------------------------

    async def register_lrs_client(
        self, register_lrs_client_request: pb.RegisterLrsClientRequest
    ) -> pb.RegisterLrsClientResponse:
        r = register_lrs_client_request
        creds = await self.service.register_lrs_client(current_principal(), r.name, r.request_id)
        return pb.RegisterLrsClientResponse(
            client=lrs_client_to_pb(creds.client), secret=creds.secret
        )

    async def list_lrs_clients(
        self, list_lrs_clients_request: pb.ListLrsClientsRequest
    ) -> pb.ListLrsClientsResponse:
        r = list_lrs_clients_request
        page = await self.service.list_lrs_clients(current_principal(), r.page_size, r.page_token)
        return pb.ListLrsClientsResponse(
            clients=[lrs_client_to_pb(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_lrs_client(
        self, revoke_lrs_client_request: pb.RevokeLrsClientRequest
    ) -> pb.RevokeLrsClientResponse:
        client = await self.service.revoke_lrs_client(
            current_principal(), revoke_lrs_client_request.client_id
        )
        return pb.RevokeLrsClientResponse(client=lrs_client_to_pb(client))

    async def register_webhook_source(
        self, register_webhook_source_request: pb.RegisterWebhookSourceRequest
    ) -> pb.RegisterWebhookSourceResponse:
        r = register_webhook_source_request
        kind = _SOURCE_FROM_PB.get(int(r.kind))
        if kind is None:
            raise ValidationError("kind", "must be LEARNING_LOCKER, SCORM_CLOUD, MOODLE or CANVAS")
        registration = await self.service.register_webhook_source(
            current_principal(),
            name=r.name,
            kind=kind,
            secret=r.secret,
            course_id=r.course_id,
            request_id=r.request_id,
        )
        return pb.RegisterWebhookSourceResponse(
            source=webhook_source_to_pb(registration.source),
            generated_secret=registration.generated_secret,
        )

    async def list_webhook_sources(
        self, list_webhook_sources_request: pb.ListWebhookSourcesRequest
    ) -> pb.ListWebhookSourcesResponse:
        r = list_webhook_sources_request
        page = await self.service.list_webhook_sources(
            current_principal(), r.page_size, r.page_token
        )
        return pb.ListWebhookSourcesResponse(
            sources=[webhook_source_to_pb(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_webhook_source(
        self, revoke_webhook_source_request: pb.RevokeWebhookSourceRequest
    ) -> pb.RevokeWebhookSourceResponse:
        source = await self.service.revoke_webhook_source(
            current_principal(), revoke_webhook_source_request.source_id
        )
        return pb.RevokeWebhookSourceResponse(source=webhook_source_to_pb(source))

    async def import_webhook(
        self, import_webhook_request: pb.ImportWebhookRequest
    ) -> pb.ImportWebhookResponse:
        r = import_webhook_request
        result = await self.service.import_webhook(r.source_id, dict(r.headers), bytes(r.body))
        return pb.ImportWebhookResponse(
            statement_ids=result.statement_ids, skipped_events=result.skipped_events
        )


# -- LRS client authentication ----------------------------------------------------------------


def lrs_auth_interceptor(service: LearningService) -> grpc.aio.ServerInterceptor:
    """Binds an LRS client's principal for the xAPI RPCs when the gateway forwards its
    Basic credentials in `x-keiko-lrs-authorization`. Installed after the auth interceptor."""

    @asynccontextmanager
    async def bound(
        details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        value = metadata_value(context, LRS_METADATA)
        if value is None:
            yield
            return
        if optional_principal() is not None:
            raise Unauthenticated(f"send either authorization or {LRS_METADATA}, not both")
        key, secret = basic_credentials(value)
        principal = await service.authenticate_lrs_client(key, secret)
        with acting_as(principal):
            yield

    return AroundInterceptor(bound, methods={f"/{SERVICE}/{m}" for m in LRS_METHODS})


# -- composition root -------------------------------------------------------------------------


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


ANCHOR_GROUP = "learning.anchors"


def anchor_consumer(
    service: LearningService, bus: EventBus
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: apply `chain.interaction_anchored` / `chain.anchor_failed` to the
    statements (consumer group `learning.anchors`, shared by the replicas) until `stop`."""

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            [TOPIC_INTERACTION_ANCHORED, TOPIC_ANCHOR_FAILED],
            group=ANCHOR_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
        )
        consumer = asyncio.create_task(run_consumer(subscription, service.apply_anchor_event))
        try:
            await stop.wait()
        finally:
            await subscription.close()
            await asyncio.gather(consumer, return_exceptions=True)

    return run


# -- encoding ---------------------------------------------------------------------------------


_ANCHOR_STATUS = {
    None: common_pb.AnchorStatus.PENDING,
    "anchored": common_pb.AnchorStatus.ANCHORED,
    "failed": common_pb.AnchorStatus.FAILED,
}


def anchor_to_pb(row: StatementRow) -> common_pb.AnchorState:
    state = common_pb.AnchorState(
        status=common_pb.AnchorStatus(_ANCHOR_STATUS.get(row.anchor_status, 0)),
        batch_id=row.anchor_batch_id or "",
        merkle_root=row.anchor_root or "",
        leaf_index=row.anchor_leaf_index or 0,
        block_number=row.anchor_block or 0,
        tx_hash=row.anchor_tx_hash or "",
        failure_reason=row.anchor_failure or "",
    )
    if row.anchored_at is not None:
        state.anchored_at = row.anchored_at
    return state


def anchor_from_event(event: Event) -> common_pb.AnchorState:
    p = event.payload
    anchored = event.topic == TOPIC_INTERACTION_ANCHORED
    state = common_pb.AnchorState(
        status=common_pb.AnchorStatus(
            common_pb.AnchorStatus.ANCHORED if anchored else common_pb.AnchorStatus.FAILED
        ),
        batch_id=str(p.get("batch_id", "")),
        merkle_root=str(p.get("root", "")),
        leaf_index=int(p.get("leaf_index") or 0),
        block_number=int(p.get("block") or 0),
        tx_hash=str(p.get("tx_hash") or ""),
        failure_reason=str(p.get("failure_reason") or ""),
    )
    if anchored:
        state.anchored_at = event.occurred_at
    return state


def actor_to_pb(actor: dict[str, Any]) -> pb.Actor:
    account = actor.get("account") or {}
    return pb.Actor(
        name=str(actor.get("name", "")),
        mbox=str(actor.get("mbox", "")),
        mbox_sha1_sum=str(actor.get("mbox_sha1sum", "")),
        openid=str(actor.get("openid", "")),
        account_home_page=str(account.get("homePage", "")),
        account_name=str(account.get("name", "")),
    )


def statement_to_pb(row: StatementRow) -> pb.Statement:
    statement = row.statement
    return pb.Statement(
        id=row.id,
        statement_json=row.statement_json,
        actor=actor_to_pb(statement.get("actor", {})),
        learner_id=row.learner_id or "",
        verb_id=row.verb_id,
        object_id=row.object_id or "",
        registration=row.registration or "",
        timestamp=row.timestamp,
        stored=row.stored,
        version=row.version,
        voided=row.voided,
        anchor=anchor_to_pb(row),
    )


def interaction_to_pb(row: StatementRow) -> pb.Interaction:
    data = row.interaction or {}
    message = pb.Interaction(
        id=row.id,
        learner_id=row.learner_id or "",
        interaction_type=common_pb.InteractionType(_KIND_TO_PB.get(row.interaction_type or "", 0)),
        context=pb.InteractionContext(
            course_id=row.course_id or "",
            class_id=row.class_id or "",
            tutorial_session_id=row.tutorial_session_id or "",
            study_session_id=row.study_session_id or "",
        ),
        activity_id=str(data.get("activity_id") or row.object_id or ""),
        title=str(data.get("title", "")),
        content=str(data.get("content", "")),
        response=str(data.get("response", "")),
        related_interaction_id=str(data.get("related_interaction_id", "")),
        success=data.get("success"),
        completion=data.get("completion"),
        occurred_at=row.timestamp,
        recorded_at=row.stored,
        statement_json=row.statement_json,
        signature_hex=row.device_signature_hex or "",
        public_key_hex=row.device_public_key_hex or "",
        anchor=anchor_to_pb(row),
    )
    score = data.get("score")
    if score:
        message.score = pb.Score(**score)
    if data.get("duration_seconds") is not None:
        message.duration = timedelta(seconds=float(data["duration_seconds"]))
    return message


def interaction_input(message: pb.InteractionInput) -> InteractionInput:
    kind = _KIND_FROM_PB.get(int(message.interaction_type))
    if kind is None:
        raise ValidationError(
            "interaction.interaction_type", "must be a known interaction type (not UNSPECIFIED)"
        )
    score = None
    if betterproto.serialized_on_wire(message.score):
        s = message.score
        score = ScoreInput(scaled=s.scaled, raw=s.raw, min=s.min, max=s.max)
    context = message.context
    return InteractionInput(
        kind=kind,
        learner_id=message.learner_id,
        course_id=context.course_id,
        class_id=context.class_id,
        tutorial_session_id=context.tutorial_session_id,
        study_session_id=context.study_session_id,
        activity_id=message.activity_id,
        title=message.title,
        content=message.content,
        response=message.response,
        related_interaction_id=message.related_interaction_id,
        score=score,
        success=message.success,
        completion=message.completion,
        duration=message.duration if message.duration != timedelta(0) else None,
        occurred_at=_set(message.occurred_at),
    )


def course_to_pb(course: dict[str, Any]) -> pb.Course:
    return pb.Course(
        id=course["id"],
        title=course["title"],
        description=course["description"],
        instructor_id=course["instructor_id"],
        class_ids=list(course.get("class_ids", [])),
        created_at=course["created_at"],
        updated_at=course["updated_at"],
    )


def class_to_pb(klass: dict[str, Any]) -> pb.Class:
    return pb.Class(
        id=klass["id"],
        course_id=klass["course_id"] or "",
        title=klass["title"],
        description=klass["description"],
        tutorial_session_ids=list(klass.get("tutorial_session_ids", [])),
        interaction_count=int(klass.get("interaction_count", 0)),
        created_at=klass["created_at"],
        updated_at=klass["updated_at"],
    )


def tutorial_to_pb(session: dict[str, Any]) -> pb.TutorialSession:
    message = pb.TutorialSession(
        id=session["id"],
        class_id=session["class_id"] or "",
        tutor_id=session["tutor_id"],
        student_ids=list(session["student_ids"]),
        session_type=pb.SessionType(_SESSION_TO_PB[session["tutor_kind"]]),
        topic=session["topic"],
        interaction_count=int(session.get("interaction_count", 0)),
        created_at=session["created_at"],
    )
    for name in ("scheduled_at", "started_at", "ended_at"):
        if session.get(name) is not None:
            setattr(message, name, session[name])
    return message


def study_to_pb(session: dict[str, Any]) -> pb.StudySession:
    message = pb.StudySession(
        id=session["id"],
        learner_id=session["learner_id"],
        class_id=session["class_id"] or "",
        topic=session["topic"],
        started_at=session["started_at"],
        interaction_count=int(session.get("interaction_count", 0)),
    )
    if session.get("ended_at") is not None:
        message.ended_at = session["ended_at"]
    return message


def lrs_client_to_pb(client: dict[str, Any]) -> pb.LrsClient:
    message = pb.LrsClient(
        id=client["id"],
        name=client["name"],
        key=client["key"],
        owner_id=client["owner_id"],
        created_at=client["created_at"],
    )
    if client.get("revoked_at") is not None:
        message.revoked_at = client["revoked_at"]
    return message


def webhook_source_to_pb(source: dict[str, Any]) -> pb.WebhookSource:
    message = pb.WebhookSource(
        id=source["id"],
        name=source["name"],
        kind=pb.WebhookSourceKind(_SOURCE_TO_PB[source["kind"]]),
        owner_id=source["owner_id"],
        endpoint_path=source.get("endpoint_path") or f"/webhooks/{source['id']}",
        created_at=source["created_at"],
    )
    if source.get("revoked_at") is not None:
        message.revoked_at = source["revoked_at"]
    return message


__all__ = [
    "LRS_METADATA",
    "LearningServicer",
    "build_learning_servicer",
    "lrs_auth_interceptor",
]
