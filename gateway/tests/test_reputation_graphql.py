"""Reputation through the gateway: GraphQL -> gRPC -> the reputation service, with the
blind, error codes with field paths, and the reputationUpdated subscription over
graphql-transport-ws. Until the lead wires the module into gateway.schema, the test
serves a schema that merges it with the existing root types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from websockets.asyncio.client import connect

import gateway.schema as gateway_schema
from gateway.extensions import MaskInternalErrors, OperationMetrics
from gateway.schema import KeikoSchema, Mutation, Query, Subscription
from gateway.schema.reputation import ReputationMutation, ReputationQuery, ReputationSubscription
from gateway.tests.conftest import GatewayFactory, LiveGateway
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.testing import access_token, token_pair
from services.reputation.service import ReputationService, StoredHumanityLookup
from services.reputation.servicer import ReputationServicer
from services.reputation.storage import outbox
from services.reputation.tests.conftest import complete_session

pytestmark = pytest.mark.schemas("reputation")


WIRED = issubclass(Query, ReputationQuery)


def _merged(root: type, extra: type) -> type:
    """`root` with `extra`'s fields (once the lead wires the module, `root` already has them)."""
    if issubclass(root, extra):
        return root
    return strawberry.type(type(f"Test{root.__name__}", (extra, root), {}))


def _build_schema(*, max_depth: int = 12, max_aliases: int = 30) -> strawberry.Schema:
    return KeikoSchema(
        query=_merged(Query, ReputationQuery),
        mutation=_merged(Mutation, ReputationMutation),
        subscription=_merged(Subscription, ReputationSubscription),
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            MaskInternalErrors,
            OperationMetrics,
        ],
    )


@pytest.fixture
async def gw(
    live_gateway: GatewayFactory,
    migrated_database: Database,
    event_bus: EventBus,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[LiveGateway, ReputationService, OutboxRelay]]:
    if not WIRED:
        monkeypatch.setattr(gateway_schema, "build_schema", _build_schema)
    service = ReputationService(migrated_database, clock, StoredHumanityLookup(migrated_database))
    fanout = EventFanout(event_bus, name="gw-reputation-test")
    relay = OutboxRelay(migrated_database, outbox, event_bus)
    try:
        async with live_gateway(
            [ReputationServicer(service, fanout)], clock=clock, issuer_verifier=token_pair(clock)
        ) as live:
            yield live, service, relay
    finally:
        await fanout.close()


SUBMIT = """
mutation($input: SubmitRatingInput!) {
  submitRating(input: $input) { id score comment revealed raterRole sessionId weight }
}"""
RATING = "query($id: ID!) { rating(id: $id) { id score comment revealed } }"
REPUTATION = """
query($u: ID) { reputation(userId: $u) {
  userId currentScore historicalScore totalRatings recentRatings
  roleScores { raterRole currentScore ratingCount } } }"""


def rating_input(sid: str, rated: str, role: str, score: int, **kw: Any) -> dict[str, Any]:
    return {"input": {"ratedId": rated, "raterRole": role, "sessionId": sid, "score": score, **kw}}


async def test_rating_flow_over_graphql(
    gw: tuple[LiveGateway, ReputationService, OutboxRelay],
) -> None:
    live, service, _ = gw
    ana = access_token(live.issuer, "ana")
    tutor = access_token(live.issuer, "tutor", "tutor")
    await complete_session(service, "ana-old", "ana")
    sid = await complete_session(service, "tutor", "ana")

    bad = await live.graphql(SUBMIT, rating_input(sid, "tutor", "STUDENT", 9), token=ana)
    [error] = bad["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "score"
    assert error["message"] == "score: must be between 1 and 5"
    self_rating = await live.graphql(SUBMIT, rating_input(sid, "ana", "STUDENT", 5), token=ana)
    assert self_rating["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await live.graphql(SUBMIT, rating_input(sid, "tutor", "STUDENT", 5))
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    given = await live.graphql(
        SUBMIT, rating_input(sid, "tutor", "STUDENT", 4, comment="clear", requestId="r1"), token=ana
    )
    rating = given["data"]["submitRating"]
    assert (rating["score"], rating["revealed"], rating["sessionId"]) == (4, False, sid)
    twice = await live.graphql(SUBMIT, rating_input(sid, "tutor", "STUDENT", 4), token=ana)
    assert twice["errors"][0]["extensions"]["code"] == "CONFLICT"

    blind = await live.graphql(RATING, {"id": rating["id"]}, token=tutor)
    assert blind["data"]["rating"] == {
        "id": rating["id"],
        "score": None,
        "comment": None,
        "revealed": False,
    }
    back = await live.graphql(SUBMIT, rating_input(sid, "ana", "TUTOR", 5), token=tutor)
    assert back["data"]["submitRating"]["revealed"] is True
    seen = await live.graphql(RATING, {"id": rating["id"]}, token=tutor)
    assert seen["data"]["rating"]["score"] == 4 and seen["data"]["rating"]["comment"] == "clear"

    public = await live.graphql(REPUTATION, {"u": "tutor"})
    score = public["data"]["reputation"]
    assert score["totalRatings"] == 1 and score["recentRatings"] == 1
    assert score["currentScore"] == pytest.approx((3 * 3.5 + 4) / 4)
    assert {r["raterRole"]: r["ratingCount"] for r in score["roleScores"]} == {
        "STUDENT": 1,
        "TUTOR": 0,
    }

    report = await live.graphql(
        'mutation($id: ID!) { reportRating(ratingId: $id, reason: "unfair") '
        "{ reasons reviewStatus } }",
        {"id": rating["id"]},
        token=tutor,
    )
    assert report["data"]["reportRating"] == {"reasons": ["REPORTED"], "reviewStatus": "OPEN"}
    admin = access_token(live.issuer, "root", "admin")
    flagged = await live.graphql(
        "{ flaggedRatings { flaggedRatings { rating { id flagged } details } } }", token=admin
    )
    [item] = flagged["data"]["flaggedRatings"]["flaggedRatings"]
    assert item["rating"] == {"id": rating["id"], "flagged": True}
    assert "unfair" in item["details"]
    forbidden = await live.graphql("{ flaggedRatings { nextPageToken } }", token=tutor)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reviewed = await live.graphql(
        'mutation($id: ID!) { reviewFlag(ratingId: $id, decision: DISMISS, note: "fine") '
        "{ reviewStatus reviewerId } }",
        {"id": rating["id"]},
        token=admin,
    )
    assert reviewed["data"]["reviewFlag"] == {"reviewStatus": "DISMISSED", "reviewerId": "root"}


async def test_reputation_updated_subscription(
    gw: tuple[LiveGateway, ReputationService, OutboxRelay],
) -> None:
    live, service, relay = gw
    await complete_session(service, "ben-old", "ben")
    sid = await complete_session(service, "tutor", "ben")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = (
            'subscription { reputationUpdated(userId: "tutor") '
            "{ userId totalRatings currentScore } }"
        )
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))

        async def next_score() -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] != "error", message
                if message["type"] == "next":
                    return dict(message["payload"]["data"]["reputationUpdated"])

        assert (await next_score())["totalRatings"] == 0
        ben = access_token(live.issuer, "ben")
        tutor = access_token(live.issuer, "tutor")
        await live.graphql(SUBMIT, rating_input(sid, "tutor", "STUDENT", 5), token=ben)
        await live.graphql(SUBMIT, rating_input(sid, "ben", "TUTOR", 5), token=tutor)
        while await relay.relay_once():
            pass
        update = await next_score()
        assert update["userId"] == "tutor" and update["totalRatings"] == 1
        assert update["currentScore"] == pytest.approx(3.875)
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
