"""Governance through the gateway: a live GraphQL server in front of the governance
servicer over gRPC, with a local schema that merges the governance operations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from websockets.asyncio.client import connect

from gateway.schema import KeikoSchema
from gateway.schema.governance import GovernanceMutation, GovernanceQuery, GovernanceSubscription
from gateway.schema.identity import IdentityMutation, IdentityQuery
from gateway.schema.system import SystemSubscription
from gateway.tests.conftest import GatewayFactory, LiveGateway
from services.governance.humanity import TOPIC_HUMANITY_VERIFIED, HumanityMirror
from services.governance.servicer import build_governance_servicer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.fanout import EventFanout
from services.kit.grpc.testing import access_token, token_pair
from services.kit.testing import RecordingRuntime as Runtime

ANA = "5a4b2c1d-0000-4000-8000-000000000001"
BEN = "5a4b2c1d-0000-4000-8000-000000000002"


@strawberry.type
class Query(IdentityQuery, GovernanceQuery):
    pass


@strawberry.type
class Mutation(IdentityMutation, GovernanceMutation):
    pass


@strawberry.type
class Subscription(SystemSubscription, GovernanceSubscription):
    pass


def merged_schema(**_: object) -> strawberry.Schema:
    return KeikoSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True),
    )


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("governance",)


@pytest.fixture
def local_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import gateway.schema

    monkeypatch.setattr(gateway.schema, "build_schema", merged_schema)
    yield


@dataclass
class Env:
    gw: LiveGateway
    runtime: Runtime
    tokens: dict[str, str]

    async def gql(self, who: str, query: str, **variables: object) -> dict:
        return await self.gw.graphql(query, variables, token=self.tokens[who])


@pytest.fixture
async def env(
    local_schema: None,
    live_gateway: GatewayFactory,
    migrated_database: Database,
    event_bus: EventBus,
    clock: FixedClock,
) -> AsyncIterator[Env]:
    fanout = EventFanout(event_bus, name="governance-gql-test")
    runtime = Runtime(migrated_database, event_bus, clock, fanout)
    servicer = build_governance_servicer(runtime)
    mirror = HumanityMirror(migrated_database, clock)
    for user_id in (ANA, BEN):
        await mirror.handle(
            Event(
                TOPIC_HUMANITY_VERIFIED,
                key=user_id,
                payload={"user_id": user_id},
                occurred_at=clock.now(),
            )
        )
    issuer, verifier = token_pair(clock, ttl=timedelta(days=365))
    stop = asyncio.Event()
    relay = asyncio.create_task(runtime.jobs["governance.outbox_relay"](stop))
    try:
        async with live_gateway([servicer], clock=clock, issuer_verifier=(issuer, verifier)) as gw:
            tokens = {"ana": access_token(issuer, ANA), "ben": access_token(issuer, BEN)}
            yield Env(gw, runtime, tokens)
    finally:
        stop.set()
        await relay
        await fanout.close()


CREATE_COMMUNITY = """
mutation($input: CreateCommunityInput!) {
  createCommunity(input: $input) { id name memberCount rules { votingMethod quorumBps } }
}"""
CREATE_PROPOSAL = """
mutation($input: CreateProposalInput!) {
  createProposal(input: $input) { id status votingMethod options { index label } }
}"""
CAST_VOTE = """
mutation($id: ID!, $choices: [VoteChoiceInput!]!, $rid: String!) {
  castVote(proposalId: $id, choices: $choices, requestId: $rid) {
    vote { voterId choices { optionIndex } }
    tally { totalVoters eligibleVoters leadingOptionIndex final }
  }
}"""


async def test_governance_flow_over_graphql(env: Env) -> None:
    created = await env.gql(
        "ana",
        CREATE_COMMUNITY,
        input={
            "name": "Poetry circle",
            "rules": {
                "votingMethod": "SINGLE_CHOICE",
                "quorumBps": 5000,
                "defaultVotingPeriodSeconds": 3600,
            },
            "initialStandards": "# Respect",
        },
    )
    community = created["data"]["createCommunity"]
    assert community["rules"] == {"votingMethod": "SINGLE_CHOICE", "quorumBps": 5000}
    joined = await env.gql(
        "ben",
        "mutation($id: ID!) { joinCommunity(communityId: $id) { role humanVerified } }",
        id=community["id"],
    )
    assert joined["data"]["joinCommunity"] == {"role": "MEMBER", "humanVerified": True}

    bad = await env.gql(
        "ana", CREATE_PROPOSAL, input={"communityId": community["id"], "title": " "}
    )
    (error,) = bad["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "title"

    proposal = (
        await env.gql(
            "ana",
            CREATE_PROPOSAL,
            input={"communityId": community["id"], "title": "Read Neruda next", "requestId": "p1"},
        )
    )["data"]["createProposal"]
    assert proposal["status"] == "ACTIVE" and [o["label"] for o in proposal["options"]] == [
        "For",
        "Against",
        "Abstain",
    ]

    # Ben watches the proposal over graphql-transport-ws while Ana and Ben vote.
    async with connect(env.gw.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authToken": env.tokens["ben"]}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "w",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription($id: ID!) { proposalUpdated(proposalId: $id) "
                        "{ kind proposal { status tally { totalVoters final } } } }",
                        "variables": {"id": proposal["id"]},
                    },
                }
            )
        )
        for _ in range(3000):  # until the service subscribed to the fanout
            if env.runtime.fanout._watchers:
                break
            await asyncio.sleep(0.01)

        voted = await env.gql(
            "ana", CAST_VOTE, id=proposal["id"], choices=[{"optionIndex": 0}], rid="v1"
        )
        assert voted["data"]["castVote"]["tally"] == {
            "totalVoters": 1,
            "eligibleVoters": 2,
            "leadingOptionIndex": 0,
            "final": False,
        }
        again = await env.gql(
            "ana", CAST_VOTE, id=proposal["id"], choices=[{"optionIndex": 0}], rid="v1"
        )
        assert again["data"]["castVote"]["vote"] == voted["data"]["castVote"]["vote"]
        conflict = await env.gql(
            "ana", CAST_VOTE, id=proposal["id"], choices=[{"optionIndex": 1}], rid="v2"
        )
        assert conflict["errors"][0]["extensions"]["code"] == "CONFLICT"
        bad_vote = await env.gql(
            "ben", CAST_VOTE, id=proposal["id"], choices=[{"optionIndex": 9}], rid="b1"
        )
        assert bad_vote["errors"][0]["extensions"]["field"] == "choices[0].option_index"

        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert message["type"] == "next", message
        assert message["payload"]["data"]["proposalUpdated"] == {
            "kind": "VOTE_CAST",
            "proposal": {"status": "ACTIVE", "tally": {"totalVoters": 1, "final": False}},
        }
        await ws.send(json.dumps({"id": "w", "type": "complete"}))

    early = await env.gql(
        "ben",
        "mutation($id: ID!) { finalizeProposal(proposalId: $id) { status } }",
        id=proposal["id"],
    )
    assert early["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION"
    env.runtime.clock.advance(timedelta(hours=1))
    final = await env.gql(
        "ben",
        "mutation($id: ID!) { finalizeProposal(proposalId: $id) "
        "{ status anchor { status } tally { final quorumReached } } }",
        id=proposal["id"],
    )
    assert final["data"]["finalizeProposal"] == {
        "status": "SUCCEEDED",
        "anchor": {"status": "PENDING"},
        "tally": {"final": True, "quorumReached": True},
    }
    mine = await env.gql(
        "ana",
        "query($id: ID!) { proposal(id: $id) { myVote { choices { optionIndex } } } }",
        id=proposal["id"],
    )
    assert mine["data"]["proposal"]["myVote"] == {"choices": [{"optionIndex": 0}]}
    standards = await env.gql(
        "ben",
        "query($id: ID!) { communityStandards(communityId: $id, kind: COMMUNITY_STANDARDS) "
        "{ version content } }",
        id=community["id"],
    )
    assert standards["data"]["communityStandards"] == {"version": 1, "content": "# Respect"}
    forbidden = await env.gql(
        "ben",
        "mutation($c: ID!, $u: ID!) { setCommunityMemberRole(communityId: $c, userId: $u, "
        "role: ADMIN) { role } }",
        c=community["id"],
        u=BEN,
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
