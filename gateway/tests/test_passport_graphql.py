"""The passport through the gateway: GraphQL -> gRPC -> the passport service. The
timeline connection, per-page batched verification (one VerifyPassport for N entries),
share links, privacy, errors with field paths, and the passportUpdated /
interactionAnchored subscriptions over graphql-transport-ws. Until the lead wires the
module into gateway.schema, the test serves a schema that merges it with the roots."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from graphql import parse
from nacl.signing import SigningKey
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from websockets.asyncio.client import connect

import gateway.schema as gateway_schema
from chain.verify import InMemoryChainReader
from gateway.extensions import MaskInternalErrors, OperationMetrics
from gateway.schema import KeikoSchema, Mutation, Query, Subscription
from gateway.schema.passport import PassportMutation, PassportQuery, PassportSubscription
from gateway.schema.passport.response_cache import plan_of
from gateway.tests.conftest import GatewayFactory, LiveGateway
from services.api.keiko.passport import v1 as pb
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.testing import access_token, token_pair
from services.passport.domain import PrivacySettings
from services.passport.service import PassportService
from services.passport.servicer import PassportServicer
from services.passport.storage import outbox
from services.passport.tests.conftest import ANA, consume
from services.passport.tests.factories import batch, interaction, minutes, recorded_event
from services.passport.tests.test_service import reader_factory

pytestmark = pytest.mark.schemas("passport")

WIRED = issubclass(Query, PassportQuery)


def _merged(root: type, extra: type) -> type:
    if issubclass(root, extra):
        return root
    return strawberry.type(type(f"Test{root.__name__}", (extra, root), {}))


def _build_schema(*, max_depth: int = 12, max_aliases: int = 30) -> strawberry.Schema:
    return KeikoSchema(
        query=_merged(Query, PassportQuery),
        mutation=_merged(Mutation, PassportMutation),
        subscription=_merged(Subscription, PassportSubscription),
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            MaskInternalErrors,
            OperationMetrics,
        ],
    )


class CountingServicer(PassportServicer):
    verify_calls = 0
    timeline_calls = 0
    # Answer GetTimeline as messages even when the gateway asks for groups_json.
    message_form = False

    async def get_timeline(
        self, get_timeline_request: pb.GetTimelineRequest
    ) -> pb.GetTimelineResponse:
        type(self).timeline_calls += 1
        if self.message_form:
            get_timeline_request.groups_json = False
        return await super().get_timeline(get_timeline_request)

    async def get_shared_passport(
        self, get_shared_passport_request: pb.GetSharedPassportRequest
    ) -> pb.GetSharedPassportResponse:
        type(self).timeline_calls += 1
        if self.message_form:
            get_shared_passport_request.groups_json = False
        return await super().get_shared_passport(get_shared_passport_request)

    async def verify_passport(
        self, verify_passport_request: pb.VerifyPassportRequest
    ) -> pb.VerifyPassportResponse:
        type(self).verify_calls += 1
        return await super().verify_passport(verify_passport_request)


@dataclass
class Gw:
    live: LiveGateway
    service: PassportService
    relay: OutboxRelay
    fanout: EventFanout
    key: SigningKey

    def token(self, user: str) -> str:
        return access_token(self.live.issuer, user)


@pytest.fixture
async def gw(
    live_gateway: GatewayFactory,
    migrated_database: Database,
    event_bus: EventBus,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Gw]:
    if not WIRED:
        monkeypatch.setattr(gateway_schema, "build_schema", _build_schema)
    service = PassportService(migrated_database, clock, share_base_url="https://gw.test")
    fanout = EventFanout(event_bus, name="gw-passport-test")
    relay = OutboxRelay(migrated_database, outbox, event_bus)
    CountingServicer.verify_calls = CountingServicer.timeline_calls = 0
    CountingServicer.message_form = False
    try:
        async with live_gateway(
            [CountingServicer(service, fanout)], clock=clock, issuer_verifier=token_pair(clock)
        ) as live:
            yield Gw(live, service, relay, fanout, SigningKey.generate())
    finally:
        await fanout.close()


ENTRY = (
    "statementId interactionType summary scoreScaled anchor { status txHash } "
    "author { kind id displayName label legacy publicKeyHex } "
)
PASSPORT = (
    """
query($first: Int!, $after: String) {
  passport {
    id ownerId entryCount privacySettings { public shareLinkDisclosure { showContent } }
    timeline(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { level id children { level id entries {"""
    + ENTRY
    + """ verification { status verified reason keyRegistration } } } } }
    }
  }
}
"""
)


async def test_timeline_connection_with_batched_verification(gw: Gw) -> None:
    clock = gw.service.clock
    items = [interaction(gw.key, "ana", clock.now() + minutes(i)) for i in range(5)]
    anchored = batch(items[:4])
    await consume(gw.service, *(recorded_event(i) for i in items), *anchored.events())
    gw.service.chain_reader = reader_factory(
        InMemoryChainReader([(anchored.batch_id, anchored.info(), anchored.tx_hash)])
    )
    ana = gw.token("ana")
    first = await gw.live.graphql(PASSPORT, {"first": 3}, token=ana)
    assert "errors" not in first, first
    passport = first["data"]["passport"]
    assert passport["ownerId"] == "ana" and passport["entryCount"] == 5
    assert passport["privacySettings"]["public"] is False
    page = passport["timeline"]
    assert page["pageInfo"]["hasNextPage"] is True
    [edge] = page["edges"]
    assert edge["node"]["level"] == "COURSE" and edge["cursor"] == page["pageInfo"]["endCursor"]
    entries = edge["node"]["children"][0]["entries"]
    assert [e["statementId"] for e in entries] == [i.statement_id for i in items[:3]]
    assert [e["verification"]["status"] for e in entries] == ["verified"] * 3
    assert entries[0]["interactionType"] == "ANSWER" and entries[0]["scoreScaled"] == 0.8
    assert entries[0]["author"] == {
        "kind": "SELF",
        "id": "ana",
        "displayName": "",
        "label": "self",
        "legacy": False,
        "publicKeyHex": items[0].public_key.hex(),
    }
    assert entries[0]["verification"]["keyRegistration"] == "not registered on chain"
    # Three entries, one VerifyPassport call: the DataLoader batched them.
    assert CountingServicer.verify_calls == 1
    rest = await gw.live.graphql(
        PASSPORT, {"first": 3, "after": page["pageInfo"]["endCursor"]}, token=ana
    )
    entries = rest["data"]["passport"]["timeline"]["edges"][0]["node"]["children"][0]["entries"]
    assert [e["verification"]["status"] for e in entries] == ["verified", "pending"]
    assert rest["data"]["passport"]["timeline"]["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": None,
    }


SHARE = """
mutation($input: CreateShareLinkInput!) {
  createShareLink(input: $input) { token url link { id label viewCount expiresAt } }
}
"""
SHARED = """
query($token: String!) {
  sharedPassport(token: $token) {
    passport { id ownerId entryCount privacySettings { public } }
    timeline { edges { node { children { entries { statementId statementJson } } } } }
  }
}
"""


async def test_share_links_privacy_and_errors(gw: Gw) -> None:
    clock = gw.service.clock
    item = interaction(gw.key, "ana", clock.now())
    await consume(gw.service, recorded_event(item))
    ana, ben = gw.token("ana"), gw.token("ben")

    mine = await gw.live.graphql("{ passport { id } }", token=ana)
    passport_id = mine["data"]["passport"]["id"]
    hidden = await gw.live.graphql(
        "query($id: ID!) { passport(id: $id) { id } }", {"id": passport_id}, token=ben
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    anonymous = await gw.live.graphql("{ passport { id } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    bad = await gw.live.graphql(SHARE, {"input": {"scope": {"showIdentity": True}}}, token=ana)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad["errors"][0]["extensions"]["field"] == "scope"

    created = await gw.live.graphql(
        SHARE, {"input": {"label": "ACME", "requestId": "r-1"}}, token=ana
    )
    link = created["data"]["createShareLink"]
    assert link["url"] == f"https://gw.test/verify/share/{link['token']}"
    shared = await gw.live.graphql(SHARED, {"token": link["token"]})
    assert "errors" not in shared, shared
    view = shared["data"]["sharedPassport"]
    assert view["passport"]["ownerId"] is None and view["passport"]["privacySettings"] is None
    [entry] = view["timeline"]["edges"][0]["node"]["children"][0]["entries"]
    assert entry["statementId"] == item.statement_id and entry["statementJson"]

    revoke = "mutation($id: ID!) { revokeShareLink(id: $id) { id revokedAt } }"
    stolen = await gw.live.graphql(revoke, {"id": link["link"]["id"]}, token=ben)
    assert stolen["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    done = await gw.live.graphql(revoke, {"id": link["link"]["id"]}, token=ana)
    assert done["data"]["revokeShareLink"]["revokedAt"] is not None
    gone = await gw.live.graphql(SHARED, {"token": link["token"]})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    privacy = """
    mutation($input: PrivacySettingsInput!) {
      updatePrivacySettings(input: $input) { public publicDisclosure { interactionTypes } }
    }"""
    wrong = await gw.live.graphql(
        privacy,
        {
            "input": {
                "public": True,
                "publicDisclosure": {"showContent": True, "showScores": False},
                "shareLinkDisclosure": {},
            }
        },
        token=ana,
    )
    assert wrong["errors"][0]["extensions"]["field"] == "settings.public_disclosure.show_content"
    ok = await gw.live.graphql(
        privacy,
        {
            "input": {
                "public": True,
                "publicDisclosure": {"interactionTypes": ["ANSWER"]},
                "shareLinkDisclosure": {},
            }
        },
        token=ana,
    )
    assert ok["data"]["updatePrivacySettings"] == {
        "public": True,
        "publicDisclosure": {"interactionTypes": ["ANSWER"]},
    }
    # `{}` means the service's defaults: content and scores shown (so a public passport
    # stays verifiable), identity not.
    defaults = await gw.live.graphql(
        """mutation($input: PrivacySettingsInput!) { updatePrivacySettings(input: $input) {
             publicDisclosure { showContent showScores showIdentity } } }""",
        {"input": {"public": True, "publicDisclosure": {}, "shareLinkDisclosure": {}}},
        token=ana,
    )
    assert defaults["data"]["updatePrivacySettings"]["publicDisclosure"] == {
        "showContent": True,
        "showScores": True,
        "showIdentity": False,
    }
    public = await gw.live.graphql(
        "query($id: ID!) { passport(id: $id) { ownerId entryCount } }", {"id": passport_id}
    )
    assert public["data"]["passport"] == {"ownerId": None, "entryCount": 1}

    profile = """
    mutation($input: LearningProfileInput!) {
      updateLearningProfile(input: $input) { learningStyle strengths { domain level } }
    }"""
    saved = await gw.live.graphql(
        profile,
        {"input": {"learningStyle": "VISUAL", "strengths": [{"domain": "algebra", "level": 70}]}},
        token=ana,
    )
    assert saved["data"]["updateLearningProfile"] == {
        "learningStyle": "VISUAL",
        "strengths": [{"domain": "algebra", "level": 70}],
    }
    too_high = await gw.live.graphql(
        profile, {"input": {"strengths": [{"domain": "x", "level": 101}]}}, token=ana
    )
    assert too_high["errors"][0]["extensions"]["field"] == "profile.strengths[0].level"


async def _next(ws: Any, name: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] not in ("error", "complete"), message
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            return dict(message["payload"]["data"][name])


async def _watchers_registered(gw: Gw, count: int) -> None:
    """Until exactly ``count`` WatchPassport streams listen (after a `complete`, the
    ended one may still be registered for a moment: counting it, an event published
    before the next stream listens would be missed)."""
    for _ in range(200):
        if len(gw.fanout._watchers) == count:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not {count} WatchPassport streams: {len(gw.fanout._watchers)}")


async def test_passport_updated_and_interaction_anchored(gw: Gw) -> None:
    ana = gw.token("ana")
    await gw.live.graphql("{ passport { id } }", token=ana)
    item = interaction(gw.key, "ana", gw.service.clock.now())
    anchored = batch([item])
    async with connect(gw.live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {ana}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        updated = "subscription { passportUpdated { kind entry { statementId } } }"
        anchored_q = "subscription { interactionAnchored { statementId anchor { status } } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": updated}}))
        await _watchers_registered(gw, 1)
        await consume(gw.service, recorded_event(item))
        while await gw.relay.relay_once():
            pass
        first = await _next(ws, "passportUpdated")
        assert first == {"kind": "ENTRY_ADDED", "entry": {"statementId": item.statement_id}}
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await _watchers_registered(gw, 0)

        await ws.send(
            json.dumps({"id": "2", "type": "subscribe", "payload": {"query": anchored_q}})
        )
        await _watchers_registered(gw, 1)
        await consume(gw.service, *anchored.events())
        while await gw.relay.relay_once():
            pass
        update = await _next(ws, "interactionAnchored")
        assert update == {"statementId": item.statement_id, "anchor": {"status": "ANCHORED"}}
        await ws.send(json.dumps({"id": "2", "type": "complete"}))

    async with connect(gw.live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "3",
                    "type": "subscribe",
                    "payload": {"query": "subscription { passportUpdated { kind } }"},
                }
            )
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else payload.get("errors", [])
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message


CACHED = """
query($first: Int!) {
  passport {
    id entryCount ownerDisplayName
    timeline(first: $first) {
      edges { node { children { entries { statementId author { displayName } } } } }
    }
  }
}
"""
PUBLIC = "query($id: ID!) { passport(id: $id) { id entryCount } }"


def _renamed(user_id: str, name: str) -> Event:
    return Event(
        "identity.profile_changed", key=user_id, payload={"user_id": user_id, "display_name": name}
    )


def _entries(reply: dict[str, Any]) -> list[dict[str, Any]]:
    edges = reply["data"]["passport"]["timeline"]["edges"]
    return [e for edge in edges for c in edge["node"]["children"] for e in c["entries"]]


async def test_a_rendered_passport_is_served_per_caller_until_it_changes(gw: Gw) -> None:
    clock = gw.service.clock
    own = interaction(gw.key, "ana", clock.now())
    feedback = interaction(SigningKey.generate(), "ana", clock.now(), author="tom", signer="tom")
    await consume(gw.service, _renamed("tom", "Tom"), recorded_event(own), recorded_event(feedback))
    ana, ben = gw.token("ana"), gw.token("ben")

    async def read(token: str, query: str = CACHED, **variables: Any) -> dict[str, Any]:
        reply = await gw.live.graphql(query, variables or {"first": 10}, token=token)
        assert "errors" not in reply, reply
        return reply

    first = await read(ana)
    assert CountingServicer.timeline_calls == 1
    assert await read(ana) == first  # served again: the passport did not change
    assert CountingServicer.timeline_calls == 1
    # Another caller, the same document: their own passport, never Ana's.
    assert (await read(ben))["data"]["passport"]["entryCount"] == 0
    assert CountingServicer.timeline_calls == 2
    # Ana's other token is another caller too.
    await read(gw.token("ana"))
    assert CountingServicer.timeline_calls == 3

    # An author's new name, a new entry, the owner's name: each shows at once.
    await consume(gw.service, _renamed("tom", "Tom Tutor"))
    names = {e["statementId"]: e["author"]["displayName"] for e in _entries(await read(ana))}
    assert names[feedback.statement_id] == "Tom Tutor"
    await consume(gw.service, recorded_event(interaction(gw.key, "ana", clock.now())))
    assert (await read(ana))["data"]["passport"]["entryCount"] == 3
    await consume(gw.service, _renamed("ana", "Ana"))
    assert (await read(ana))["data"]["passport"]["ownerDisplayName"] == "Ana"
    assert CountingServicer.timeline_calls == 6

    # A public passport read by Ben stops being served the moment it turns private.
    passport_id = first["data"]["passport"]["id"]
    await gw.service.update_privacy(ANA, PrivacySettings(public=True))
    assert (await read(ben, PUBLIC, id=passport_id))["data"]["passport"]["entryCount"] == 3
    await read(ben, PUBLIC, id=passport_id)
    await gw.service.update_privacy(ANA, PrivacySettings(public=False))
    hidden = await gw.live.graphql(PUBLIC, {"id": passport_id}, token=ben)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_only_passport_reads_of_versioned_fields_are_cached() -> None:
    schema = gateway_schema.build_schema()._schema

    def cached(query: str) -> bool:
        return plan_of(schema, parse(query), None) is not None

    assert cached(CACHED) and cached(PUBLIC)
    assert cached("{ __typename passport { timeline { pageInfo { endCursor } } } }")
    # The chain's answer is not versioned; other roots, mutations, introspection neither.
    assert not cached(PASSPORT)
    in_a_fragment = "fragment V on PassportEntry { verification { status } }"
    assert not cached(
        "{ passport { timeline { edges { node { entries { ...V } } } } } } " + in_a_fragment
    )
    assert not cached("{ passport { id } learningProfile { learningStyle } }")
    assert not cached("{ a: passport { id } b: passport { id } }")
    assert not cached("{ passport { id } __schema { types { name } } }")
    assert not cached('mutation { revokeShareLink(id: "x") { id } }')
