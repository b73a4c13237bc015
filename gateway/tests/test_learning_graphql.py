"""Learning over GraphQL against a live gateway: hierarchy, recording, connections,
DataLoaders (no N+1 lookups), exact errors, and the interactionRecorded subscription
over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from websockets.asyncio.client import connect

from gateway.extensions import MaskInternalErrors
from gateway.schema import KeikoSchema
from gateway.schema.identity import IdentityMutation, IdentityQuery
from gateway.schema.invitations import InvitationMutation
from gateway.schema.learning import LearningMutation, LearningQuery, LearningSubscription
from gateway.schema.system import SystemSubscription
from gateway.tests.test_xapi_resource import LiveLearning, live_learning
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus


@strawberry.type
class Query(IdentityQuery, LearningQuery):
    pass


@strawberry.type
class Mutation(IdentityMutation, LearningMutation, InvitationMutation):
    pass


@strawberry.type
class Subscription(SystemSubscription, LearningSubscription):
    pass


def learning_schema() -> strawberry.Schema:
    """What gateway/schema/__init__.py becomes once the lead adds the learning types."""
    return KeikoSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[MaskInternalErrors],
    )


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock, learning_schema()) as live:
        yield live


def data(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result["errors"]
    return result["data"]  # type: ignore[no-any-return]


RECORD = """
mutation Record($input: InteractionInput!, $requestId: String) {
  recordInteraction(input: $input, requestId: $requestId) {
    id learnerId interactionType activityId content statementJson
    context { courseId classId tutorialSessionId }
    anchor { status }
    class { title course { title } }
  }
}
"""


async def setup_session(gw: LiveLearning) -> dict[str, str]:
    tutor = gw.token("tom", "tutor")
    course = data(
        await gw.graphql(
            'mutation { createCourse(title: "Linear Algebra") { id title classes { id } } }',
            token=tutor,
        )
    )["createCourse"]
    klass = data(
        await gw.graphql(
            'mutation($c: ID) { createClass(title: "Class 2", courseId: $c) '
            "{ id course { id title } } }",
            {"c": course["id"]},
            token=tutor,
        )
    )["createClass"]
    assert klass["course"] == {"id": course["id"], "title": "Linear Algebra"}
    session = data(
        await gw.graphql(
            "mutation($i: TutorialSessionInput!) { createTutorialSession(input: $i) "
            "{ id sessionType studentIds startedAt class { id } invitations { id status } } }",
            {"i": {"sessionType": "HUMAN", "studentIds": ["ana"], "classId": klass["id"]}},
            token=tutor,
        )
    )["createTutorialSession"]
    assert session["startedAt"] is None and session["class"] == {"id": klass["id"]}
    # Issue 9: Ana was invited; she accepts.
    [invitation] = session["invitations"]
    assert invitation["status"] == "PENDING"
    accepted = data(
        await gw.graphql(
            "mutation($i: ID!) { acceptInvitation(id: $i) { status inviteeId } }",
            {"i": invitation["id"]},
            token=gw.token("ana"),
        )
    )["acceptInvitation"]
    assert accepted == {"status": "ACCEPTED", "inviteeId": "ana"}
    started = data(
        await gw.graphql(
            "mutation($s: ID!) { startTutorialSession(id: $s) { startedAt } }",
            {"s": session["id"]},
            token=tutor,
        )
    )["startTutorialSession"]
    assert started["startedAt"] is not None
    return {"course": course["id"], "class": klass["id"], "session": session["id"]}


async def test_record_and_query_through_the_hierarchy(gw: LiveLearning) -> None:
    ids = await setup_session(gw)
    ana = gw.token("ana")
    recorded = data(
        await gw.graphql(
            RECORD,
            {
                "input": {
                    "interactionType": "QUESTION",
                    "tutorialSessionId": ids["session"],
                    "content": "What is a vector?",
                }
            },
            token=ana,
        )
    )["recordInteraction"]
    assert recorded["learnerId"] == "ana" and recorded["interactionType"] == "QUESTION"
    assert recorded["context"] == {
        "courseId": ids["course"],
        "classId": ids["class"],
        "tutorialSessionId": ids["session"],
    }
    assert recorded["anchor"] == {"status": "PENDING"}
    assert recorded["class"] == {"title": "Class 2", "course": {"title": "Linear Algebra"}}
    assert json.loads(recorded["statementJson"])["id"] == recorded["id"]

    for n in range(3):
        gw.clock.advance(timedelta(seconds=1))
        data(
            await gw.graphql(
                RECORD,
                {
                    "input": {
                        "interactionType": "QUESTION",
                        "classId": ids["class"],
                        "content": f"Q{n}",
                    }
                },
                token=ana,
            )
        )

    calls: list[str] = []
    original = gw.service.hierarchy.get_course

    async def counting(caller: Any, course_id: str) -> Any:
        calls.append(course_id)
        return await original(caller, course_id)

    gw.service.hierarchy.get_course = counting  # type: ignore[method-assign]
    page = data(
        await gw.graphql(
            "query($after: String) { interactions(first: 3, after: $after) "
            "{ nodes { content course { title } class { title } } endCursor hasNextPage } }",
            token=ana,
        )
    )["interactions"]
    assert [n["content"] for n in page["nodes"]] == ["What is a vector?", "Q0", "Q1"]
    assert all(n["course"] == {"title": "Linear Algebra"} for n in page["nodes"])
    assert calls == [ids["course"]]  # one lookup for the three interactions: a DataLoader
    assert page["hasNextPage"] is True
    rest = data(
        await gw.graphql(
            "query($after: String) { interactions(first: 3, after: $after) "
            "{ nodes { content } hasNextPage } }",
            {"after": page["endCursor"]},
            token=ana,
        )
    )["interactions"]
    assert rest == {"nodes": [{"content": "Q2"}], "hasNextPage": False}

    statements = data(
        await gw.graphql("{ statements(first: 10) { nodes { id verbId voided } } }", token=ana)
    )["statements"]
    assert len(statements["nodes"]) == 4
    classes = data(
        await gw.graphql(
            "query($c: ID) { classes(courseId: $c) { nodes { interactionCount "
            "tutorialSessionIds } } courses { nodes { title classes { title } } } }",
            {"c": ids["course"]},
            token=ana,
        )
    )
    assert classes["classes"]["nodes"] == [
        {"interactionCount": 4, "tutorialSessionIds": [ids["session"]]}
    ]
    assert classes["courses"]["nodes"] == [
        {"title": "Linear Algebra", "classes": [{"title": "Class 2"}]}
    ]


async def test_errors_are_exact(gw: LiveLearning) -> None:
    ids = await setup_session(gw)
    anonymous = await gw.graphql("{ interactions { nodes { id } } }")
    assert anonymous["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    intruder = await gw.graphql(
        RECORD,
        {
            "input": {
                "interactionType": "QUESTION",
                "tutorialSessionId": ids["session"],
                "content": "Let me in",
            }
        },
        token=gw.token("ben"),
    )
    [error] = intruder["errors"]
    assert error["message"] == "only participants may record into this tutorial session"
    assert error["extensions"] == {"code": "FORBIDDEN"}
    bad = await gw.graphql(
        RECORD,
        {"input": {"interactionType": "EVALUATION", "title": "Quiz", "score": {"scaled": 3}}},
        token=gw.token("ana"),
    )
    [error] = bad["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "interaction.evaluation.score.scaled"
    learner_course = await gw.graphql(
        'mutation { createCourse(title: "Mine") { id } }', token=gw.token("ana")
    )
    assert learner_course["errors"][0]["extensions"]["code"] == "FORBIDDEN"


RECORD_MANY = """
mutation RecordMany($items: [InteractionSubmissionInput!]!, $requestId: String) {
  recordInteractions(interactions: $items, requestId: $requestId) {
    id interactionType content context { tutorialSessionId } class { title }
  }
}
"""


async def test_record_many_in_one_call(gw: LiveLearning) -> None:
    ids = await setup_session(gw)
    ana = gw.token("ana")
    items = [
        {
            "input": {
                "interactionType": "QUESTION",
                "tutorialSessionId": ids["session"],
                "content": c,
            }
        }
        for c in ("first", "second")
    ]
    recorded = data(await gw.graphql(RECORD_MANY, {"items": items, "requestId": "m1"}, token=ana))[
        "recordInteractions"
    ]
    assert [r["content"] for r in recorded] == ["first", "second"]
    assert all(r["class"] == {"title": "Class 2"} for r in recorded)
    again = data(await gw.graphql(RECORD_MANY, {"items": items, "requestId": "m1"}, token=ana))[
        "recordInteractions"
    ]
    assert [r["id"] for r in again] == [r["id"] for r in recorded]
    bad = {"input": {"interactionType": "EVALUATION", "title": "Quiz", "score": {"scaled": 3}}}
    [error] = (await gw.graphql(RECORD_MANY, {"items": [items[0], bad]}, token=ana))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "interactions[1].interaction.evaluation.score.scaled"
    [error] = (await gw.graphql(RECORD_MANY, {"items": items}, token=gw.token("ben")))["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN"}
    assert error["message"].startswith("interactions[0].interaction.context: ")
    # Over the documented limit (500 a call): a client error naming the field.
    too_many = [{"input": {"interactionType": "QUESTION", "content": "q"}}] * 501
    [error] = (await gw.graphql(RECORD_MANY, {"items": too_many}, token=ana))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"].get("field") == "interactions", error


async def test_interaction_recorded_subscription(gw: LiveLearning) -> None:
    ana = gw.token("ana")
    async with connect(gw.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {ana}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription { interactionRecorded "
                        "{ id learnerId content interactionType } }"
                    },
                }
            )
        )

        async def next_event(timeout: float) -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                assert message["type"] != "error", message
                if message["type"] == "next":
                    return message["payload"]["data"]["interactionRecorded"]  # type: ignore[no-any-return]

        # The stream is live once the service has registered the watcher: record until
        # an event arrives, then check that every later one is delivered in order.
        recorded: list[str] = []
        first: dict[str, Any] | None = None
        while first is None:
            reply = data(
                await gw.graphql(
                    RECORD,
                    {"input": {"interactionType": "QUESTION", "content": "warm-up"}},
                    token=ana,
                )
            )
            recorded.append(reply["recordInteraction"]["id"])
            try:
                first = await next_event(0.5)
            except TimeoutError:
                continue
        assert first["id"] in recorded and first["learnerId"] == "ana"
        # Ben's interactions never reach Ana's subscription.
        data(
            await gw.graphql(
                RECORD,
                {"input": {"interactionType": "QUESTION", "content": "ben's"}},
                token=gw.token("ben"),
            )
        )
        mine = data(
            await gw.graphql(
                RECORD,
                {"input": {"interactionType": "EXERCISE", "title": "Ex", "completion": True}},
                token=ana,
            )
        )["recordInteraction"]
        while True:
            event = await next_event(10)
            assert event["learnerId"] == "ana"
            if event["id"] == mine["id"]:
                assert event["interactionType"] == "EXERCISE"
                break
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
