"""The learning servicer over real gRPC (the kit's host: interceptors, error mapping, auth),
with exactly the status code and message a client gets, the LRS client path and
WatchInteractions through the fanout."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from betterproto.grpc.grpclib_server import ServiceBase

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.auth import Principal, TokenIssuer, TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.kit.testing import RecordingRuntime as FakeRuntime
from services.learning.interactions.inputs import InteractionInput
from services.learning.service import LearningService
from services.learning.servicer import (
    LRS_METADATA,
    LearningServicer,
    build_learning_servicer,
    interaction_to_pb,
)
from services.learning.storage import outbox
from services.learning.tests.test_service import ACT, statement

Stub = pb.LearningServiceStub


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@asynccontextmanager
async def serving(
    servicers: Sequence[ServiceBase], verifier: TokenVerifier
) -> AsyncIterator[grpc.aio.Channel]:
    """A real server; GrpcHost installs each servicer's own `interceptors` (LRS auth)."""
    async with running_server(list(servicers), token_verifier=verifier) as channel:
        yield channel


@asynccontextmanager
async def relaying(database: Database, bus: EventBus) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(database, outbox, bus, poll_interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await task


@dataclass
class Harness:
    channel: grpc.aio.Channel
    issuer: TokenIssuer
    service: LearningService
    clock: FixedClock
    bus: EventBus

    def client(self, user: str | None = "ana", *roles: str) -> Stub:
        token = access_token(self.issuer, user, *roles) if user else None
        return stub(Stub, self.channel, access_token=token)

    def lrs(self, key: str, secret: str) -> Stub:
        value = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        return stub(Stub, self.channel, metadata=lambda: [(LRS_METADATA, value)])


@pytest.fixture
async def harness(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[Harness]:
    issuer, verifier = token_pair(clock)
    service = LearningService(migrated_database, clock)
    fanout = EventFanout(event_bus, name="learning-test")
    async with (
        relaying(migrated_database, event_bus) as relay,
        serving([LearningServicer(service, fanout)], verifier) as channel,
    ):
        service.on_commit.append(relay.notify)
        yield Harness(channel, issuer, service, clock, event_bus)
    await fanout.close()


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def question(**context: str) -> pb.InteractionInput:
    return pb.InteractionInput(
        interaction_type=common_pb.InteractionType(common_pb.InteractionType.QUESTION),
        content="What is a vector?",
        context=pb.InteractionContext(**context),
    )


async def test_statements_round_trip_and_errors(harness: Harness) -> None:
    ana = harness.client("ana")
    response = await ana.record_statements(
        pb.RecordStatementsRequest(statement_jsons=[json.dumps(statement())], xapi_version="1.0.3")
    )
    [stored] = response.statements
    assert stored.learner_id == "ana" and stored.actor.account_name == "ana"
    assert stored.anchor.status == common_pb.AnchorStatus.PENDING
    got = await ana.get_statement(pb.GetStatementRequest(statement_id=stored.id))
    assert got.statement.statement_json == stored.statement_json

    bad = statement()
    bad["object"] = {"id": "relative/iri"}
    error = await rpc_error(
        ana.record_statements(pb.RecordStatementsRequest(statement_jsons=[json.dumps(bad)]))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error)[0][0] == "statements[0].object.id"

    changed = statement(id=stored.id, activity="https://example.org/other")
    error = await rpc_error(
        ana.record_statements(pb.RecordStatementsRequest(statement_jsons=[json.dumps(changed)]))
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == (
        f"statements[0].id: statement {stored.id} is already stored with different content"
    )

    error = await rpc_error(
        ana.record_statements(
            pb.RecordStatementsRequest(statement_jsons=[json.dumps(statement("ben"))])
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    error = await rpc_error(
        harness.client(None).get_statement(pb.GetStatementRequest(statement_id=stored.id))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "authentication required",
    )
    error = await rpc_error(
        harness.client("ben").get_statement(pb.GetStatementRequest(statement_id=stored.id))
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    voided = await ana.void_statement(pb.VoidStatementRequest(statement_id=stored.id))
    assert voided.voiding_statement.verb_id == "http://adlnet.gov/expapi/verbs/voided"
    page = await ana.query_statements(pb.QueryStatementsRequest())
    assert [s.id for s in page.statements] == [voided.voiding_statement.id]


async def test_lrs_client_credentials(harness: Harness) -> None:
    registered = await harness.client("ana").register_lrs_client(
        pb.RegisterLrsClientRequest(name="Tool")
    )
    lrs = harness.lrs(registered.client.key, registered.secret)
    response = await lrs.record_statements(
        pb.RecordStatementsRequest(statement_jsons=[json.dumps(statement())])
    )
    assert response.statements[0].learner_id == "ana"
    page = await lrs.query_statements(pb.QueryStatementsRequest(learner_id="ana"))
    assert len(page.statements) == 1
    # json_only (the xAPI resource's query): the same statements, only id, JSON and stored.
    full = page.statements[0]
    (bare,) = (
        await lrs.query_statements(pb.QueryStatementsRequest(learner_id="ana", json_only=True))
    ).statements
    assert (bare.id, bare.statement_json, bare.stored) == (
        full.id,
        full.statement_json,
        full.stored,
    )
    assert full.verb_id and full.learner_id == "ana"
    assert (bare.verb_id, bare.learner_id, bare.actor) == ("", "", pb.Actor())
    error = await rpc_error(
        harness.lrs(registered.client.key, "wrong").query_statements(pb.QueryStatementsRequest())
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid LRS client credentials",
    )
    # LRS credentials open the xAPI RPCs only.
    error = await rpc_error(lrs.list_courses(pb.ListCoursesRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    await harness.client("ana").revoke_lrs_client(
        pb.RevokeLrsClientRequest(client_id=registered.client.id)
    )
    error = await rpc_error(lrs.query_statements(pb.QueryStatementsRequest()))
    assert error.details() == "the LRS client was revoked"


async def test_json_array_pages_match_the_statement_pages(harness: Harness) -> None:
    """json_array (the xAPI resource's query): the same pages, tokens and texts as the
    message per statement, as one JSON array with its count and newest stored time."""
    ana = harness.client("ana")
    await ana.record_statements(
        pb.RecordStatementsRequest(
            statement_jsons=[json.dumps(statement(activity=f"{ACT}q{i}")) for i in range(3)]
        )
    )
    for fmt, ascending in (("exact", False), ("ids", True)):
        full, array, token = [], [], ""
        while True:
            request = pb.QueryStatementsRequest(
                page_size=2, page_token=token, format=fmt, ascending=ascending
            )
            page = await ana.query_statements(request)
            request.json_array = True
            answer = await ana.query_statements(request)
            assert answer.statements == [] and answer.next_page_token == page.next_page_token
            texts = [s.statement_json for s in page.statements]
            assert answer.statements_json_array == "[" + ",".join(texts) + "]"
            assert answer.statement_count == len(texts)
            assert answer.last_stored == max(s.stored for s in page.statements)
            full += texts
            array += json.loads(answer.statements_json_array)
            token = page.next_page_token
            if not token:
                break
        assert [json.loads(t) for t in full] == array and len(array) == 3
    empty = await ana.query_statements(
        pb.QueryStatementsRequest(verb_id="https://example.org/never", json_array=True)
    )
    assert (empty.statements_json_array, empty.statement_count) == ("[]", 0)
    error = await rpc_error(
        ana.query_statements(pb.QueryStatementsRequest(page_token="garbage!", json_array=True))
    )
    assert field_violations(error)[0][0] == "page_token"


async def test_hierarchy_and_interactions(harness: Harness) -> None:
    tom = harness.client("tom", "tutor")
    ana = harness.client("ana")
    course = (await tom.create_course(pb.CreateCourseRequest(title="Algebra"))).course
    klass = (
        await tom.create_class(pb.CreateClassRequest(course_id=course.id, title="Class 2"))
    ).class_
    assert klass.course_id == course.id
    error = await rpc_error(ana.create_course(pb.CreateCourseRequest(title="Mine")))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only tutors and admins may create courses",
    )
    error = await rpc_error(tom.create_course(pb.CreateCourseRequest(title="")))
    assert field_violations(error) == [("course.title", "must not be empty")]

    session = (
        await tom.create_tutorial_session(
            pb.CreateTutorialSessionRequest(
                class_id=klass.id,
                student_ids=["ana"],
                session_type=pb.SessionType(pb.SessionType.HUMAN),
                topic="Vectors",
            )
        )
    ).session
    # Issue 9: Ana was invited; she accepts (and so takes part in the class).
    [invitation] = session.invitations
    assert invitation.status == common_pb.InvitationStatus.PENDING
    answered = await ana.respond_to_invitation(
        pb.RespondToInvitationRequest(invitation_id=invitation.id, accept=True)
    )
    assert answered.invitation.status == common_pb.InvitationStatus.ACCEPTED
    error = await rpc_error(
        ana.record_interaction(
            pb.RecordInteractionRequest(interaction=question(tutorial_session_id=session.id))
        )
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "the tutorial session has not started yet",
    )
    started = await tom.start_tutorial_session(
        pb.StartTutorialSessionRequest(session_id=session.id)
    )
    assert started.session.started_at == harness.clock.now()
    recorded = (
        await ana.record_interaction(
            pb.RecordInteractionRequest(interaction=question(tutorial_session_id=session.id))
        )
    ).interaction
    assert recorded.context.class_id == klass.id and recorded.context.course_id == course.id
    assert recorded.interaction_type == common_pb.InteractionType.QUESTION
    assert recorded.anchor.status == common_pb.AnchorStatus.PENDING

    error = await rpc_error(
        harness.client("ben").record_interaction(
            pb.RecordInteractionRequest(interaction=question(tutorial_session_id=session.id))
        )
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only participants may record into this tutorial session",
    )
    error = await rpc_error(
        ana.record_interaction(pb.RecordInteractionRequest(interaction=pb.InteractionInput()))
    )
    assert field_violations(error)[0][0] == "interaction.interaction_type"

    scored = pb.InteractionInput(
        interaction_type=common_pb.InteractionType(common_pb.InteractionType.EVALUATION),
        title="Quiz",
        score=pb.Score(raw=3, min=0, max=5),
        duration=timedelta(minutes=2),
        context=pb.InteractionContext(class_id=klass.id),
    )
    evaluation = (
        await ana.record_interaction(pb.RecordInteractionRequest(interaction=scored))
    ).interaction
    assert evaluation.score.raw == 3 and evaluation.duration == timedelta(minutes=2)
    got = await ana.get_interaction(pb.GetInteractionRequest(interaction_id=evaluation.id))
    assert got.interaction.statement_json == evaluation.statement_json
    # Read scope: the tutor sees what was recorded in his session, not Ana's own study.
    listed = await tom.list_interactions(pb.ListInteractionsRequest(learner_id="ana"))
    assert {i.id for i in listed.interactions} == {recorded.id}
    own = await ana.list_interactions(pb.ListInteractionsRequest())
    assert {i.id for i in own.interactions} == {recorded.id, evaluation.id}
    error = await rpc_error(
        harness.client("ben").list_interactions(pb.ListInteractionsRequest(learner_id="ana"))
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    got_class = await ana.get_class(pb.GetClassRequest(class_id=klass.id))
    assert got_class.class_.interaction_count == 2
    assert got_class.class_.tutorial_session_ids == [session.id]


async def test_watch_interactions(harness: Harness) -> None:
    ana = harness.client("ana")
    error = await rpc_error(
        harness.client("ben")
        .watch_interactions(pb.WatchInteractionsRequest(learner_id="ana"))
        .__anext__()
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    stream = ana.watch_interactions(pb.WatchInteractionsRequest())
    first = asyncio.ensure_future(stream.__anext__())
    # The watcher is registered once the server runs the RPC: record until one arrives.
    recorded_ids = []
    while not first.done():
        response = await ana.record_interaction(pb.RecordInteractionRequest(interaction=question()))
        recorded_ids.append(response.interaction.id)
        await asyncio.wait([first], timeout=0.5)
    event = first.result()
    assert event.kind == pb.InteractionEventKind.RECORDED
    assert event.interaction.id in recorded_ids
    # Another learner's interactions never reach Ana's stream.
    await harness.client("ben").record_interaction(
        pb.RecordInteractionRequest(interaction=question())
    )
    mine = await ana.record_interaction(pb.RecordInteractionRequest(interaction=question()))
    while True:
        nxt = await asyncio.wait_for(stream.__anext__(), 10)
        assert nxt.interaction.learner_id == "ana"
        if nxt.interaction.id == mine.interaction.id:
            break
    # The translator's anchor event reaches the stream as ANCHOR_CHANGED.
    await harness.bus.publish(
        Event(
            "chain.interaction_anchored",
            key="ana",
            payload={
                "record_id": mine.interaction.id,
                "learner_id": "ana",
                "domain": "learning",
                "batch_id": "0x1",
                "root": "0x2",
                "leaf_index": 0,
                "block": 5,
                "tx_hash": "0x3",
            },
            occurred_at=harness.clock.now(),
        )
    )
    while True:
        nxt = await asyncio.wait_for(stream.__anext__(), 10)
        if nxt.kind == pb.InteractionEventKind.ANCHOR_CHANGED:
            break
    assert nxt.interaction.id == mine.interaction.id
    assert nxt.interaction.anchor.status == common_pb.AnchorStatus.ANCHORED
    assert (nxt.interaction.anchor.block_number, nxt.interaction.anchor.tx_hash) == (5, "0x3")
    await stream.aclose()  # type: ignore[attr-defined]


async def test_webhook_source_registration_errors(harness: Harness) -> None:
    ana = harness.client("ana")
    error = await rpc_error(ana.register_webhook_source(pb.RegisterWebhookSourceRequest(name="x")))
    assert field_violations(error)[0][0] == "kind"
    error = await rpc_error(
        ana.register_webhook_source(
            pb.RegisterWebhookSourceRequest(
                name="not a url", kind=pb.WebhookSourceKind(pb.WebhookSourceKind.MOODLE)
            )
        )
    )
    assert field_violations(error)[0][0] == "name"
    made = await ana.register_webhook_source(
        pb.RegisterWebhookSourceRequest(
            name="https://moodle.example.edu",
            kind=pb.WebhookSourceKind(pb.WebhookSourceKind.MOODLE),
        )
    )
    assert made.generated_secret and made.source.endpoint_path == f"/webhooks/{made.source.id}"
    error = await rpc_error(
        harness.client(None).import_webhook(
            pb.ImportWebhookRequest(source_id=made.source.id, body=b"{}")
        )
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "missing X-Keiko-Signature header",
    )


async def test_factory_relays_the_event_and_tracks_anchor_state(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> None:
    fanout = EventFanout(event_bus, name="factory-test")
    runtime = FakeRuntime(migrated_database, event_bus, clock, fanout, {})
    servicer = build_learning_servicer(runtime)
    assert set(runtime.jobs) == {
        "learning.outbox",
        "learning.anchors",
        "learning.tutor_sessions",
    }
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in runtime.jobs.values()]
    ana = Principal("ana", frozenset({"learner"}))
    try:
        async with event_bus.subscribe(
            ["learning.interaction_recorded"], group="test", consumer="t"
        ) as recorded:
            row = await servicer.service.interactions.record_interaction(
                ana, InteractionInput(kind="question", content="Why?")
            )
            delivery = await asyncio.wait_for(recorded.__anext__(), 10)
            assert delivery.event.payload["statement_id"] == row.id
            assert delivery.event.key == "ana"
            await delivery.ack()
        assert interaction_to_pb(row).anchor.status == common_pb.AnchorStatus.PENDING
        # Events of other domains and unknown records are ignored.
        await event_bus.publish(
            Event(
                "chain.interaction_anchored",
                key="ana",
                payload={"record_id": row.id, "domain": "reputation", "learner_id": "ana"},
                occurred_at=clock.now(),
            )
        )
        await event_bus.publish(
            Event(
                "chain.interaction_anchored",
                key="ana",
                payload={
                    "record_id": row.id,
                    "learner_id": "ana",
                    "domain": "learning",
                    "batch_id": "0x7",
                    "root": "0xabc",
                    "leaf_index": 3,
                    "block": 12,
                    "tx_hash": "0xdef",
                    "status": "anchored",
                },
                occurred_at=clock.now(),
            )
        )
        await event_bus.publish(
            Event(
                "chain.anchor_failed",
                key="ana",
                payload={"record_id": row.id, "domain": "learning", "failure_reason": "late"},
                occurred_at=clock.now(),
            )
        )
        anchor = interaction_to_pb(row).anchor
        for _ in range(400):  # until the consumer applied it (bounded, no timing assertion)
            anchor = interaction_to_pb(
                await servicer.service.interactions.get_interaction(ana, row.id)
            ).anchor
            if anchor.status == common_pb.AnchorStatus.ANCHORED:
                break
            await asyncio.sleep(0.025)
        assert anchor.status == common_pb.AnchorStatus.ANCHORED
        assert (anchor.batch_id, anchor.merkle_root, anchor.leaf_index) == ("0x7", "0xabc", 3)
        assert (anchor.block_number, anchor.tx_hash) == (12, "0xdef")
        # The later failure event (redelivered or out of order) does not undo the anchor.
        assert (
            await servicer.service.statements.apply_anchor_event(
                Event(
                    "chain.anchor_failed",
                    key="ana",
                    payload={"record_id": row.id, "domain": "learning", "failure_reason": "late"},
                    occurred_at=clock.now(),
                )
            )
            is False
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await fanout.close()


async def test_record_interactions(harness: Harness) -> None:
    ana = harness.client("ana")

    def item(**fields: Any) -> pb.InteractionSubmission:
        return pb.InteractionSubmission(interaction=question(), **fields)

    request = pb.RecordInteractionsRequest(interactions=[item(), item()], request_id="r1")
    recorded = (await ana.record_interactions(request)).interactions
    assert [x.interaction_type for x in recorded] == [common_pb.InteractionType.QUESTION] * 2
    assert all(x.anchor.status == common_pb.AnchorStatus.PENDING for x in recorded)
    again = (await ana.record_interactions(request)).interactions
    assert [x.id for x in again] == [x.id for x in recorded]
    # An item's errors name it, from decoding to authorization.
    unspecified = pb.InteractionSubmission(interaction=pb.InteractionInput(content="?"))
    error = await rpc_error(
        ana.record_interactions(pb.RecordInteractionsRequest(interactions=[item(), unspecified]))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error)[0][0] == "interactions[1].interaction.interaction_type"
    about_ben = pb.InteractionSubmission(
        interaction=pb.InteractionInput(
            interaction_type=common_pb.InteractionType(common_pb.InteractionType.QUESTION),
            content="?",
            learner_id="ben",
        )
    )
    error = await rpc_error(
        ana.record_interactions(pb.RecordInteractionsRequest(interactions=[item(), about_ben]))
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details().startswith("interactions[1].interaction.learner_id: ")
    error = await rpc_error(
        ana.record_interactions(pb.RecordInteractionsRequest(interactions=[item()] * 501))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error)[0][0] == "interactions"
    listed = await ana.list_interactions(pb.ListInteractionsRequest())
    assert len(listed.interactions) == 2


async def test_brief_record_statements_answers_ids_and_learners_only(harness: Harness) -> None:
    ana = harness.client("ana")
    first = await ana.record_statements(
        pb.RecordStatementsRequest(statement_jsons=[json.dumps(statement())], brief=True)
    )
    [stored] = first.statements
    got = await ana.get_statement(pb.GetStatementRequest(statement_id=stored.id))
    assert got.statement.learner_id == stored.learner_id == "ana"
    again = await ana.record_statements(
        pb.RecordStatementsRequest(
            statement_jsons=[got.statement.statement_json, json.dumps(statement())], brief=True
        )
    )
    # The stored statement again is answered too (idempotent); nothing but ids is set.
    assert again.statements[0].id == stored.id
    assert [s.learner_id for s in again.statements] == ["ana", "ana"]
    assert [(s.statement_json, s.verb_id, s.actor) for s in again.statements] == [
        ("", "", pb.Actor())
    ] * 2
