"""The governance servicer over real gRPC: status codes and field paths on the wire,
one human one vote under 20 concurrent RPCs, WatchProposal through the outbox and fanout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest

from services.api.keiko.common import v1 as common
from services.api.keiko.governance import v1 as pb
from services.governance.anchoring import AnchorMirror
from services.governance.humanity import HumanityMirror
from services.governance.servicer import build_governance_servicer
from services.governance.tests.conftest import user, verify
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.fanout import EventFanout
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.kit.testing import RecordingRuntime as Runtime

Stub = pb.GovernanceServiceStub

# betterproto enum members are typed as int: wrap them for the typed request fields.
SINGLE_CHOICE = pb.VotingMethod(pb.VotingMethod.SINGLE_CHOICE)
OFF_CHAIN = pb.VotingMode(pb.VotingMode.OFF_CHAIN)
MEMBER = pb.MemberRole(pb.MemberRole.MEMBER)
ADMIN = pb.MemberRole(pb.MemberRole.ADMIN)
GENERAL = pb.ProposalKind(pb.ProposalKind.GENERAL)
STANDARDS_CHANGE = pb.ProposalKind(pb.ProposalKind.STANDARDS_CHANGE)
STANDARDS_UNSPECIFIED = pb.StandardsKind(pb.StandardsKind.UNSPECIFIED)
VALIDATION_RULES = pb.StandardsKind(pb.StandardsKind.VALIDATION_RULES)


@dataclass
class Harness:
    channel: grpc.aio.Channel
    issuer: TokenIssuer
    runtime: Runtime
    mirror: HumanityMirror

    def client(self, user_id: str) -> Stub:
        return stub(Stub, self.channel, access_token=access_token(self.issuer, user_id))


@pytest.fixture
async def harness(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[Harness]:
    fanout = EventFanout(event_bus, name="governance-test")
    runtime = Runtime(migrated_database, event_bus, clock, fanout)
    servicer = build_governance_servicer(runtime)
    assert set(runtime.jobs) == {
        "governance.outbox_relay",
        "governance.lifecycle",
        "governance.humanity_mirror",
        "governance.anchor_mirror",
    }
    issuer, verifier = token_pair(clock, ttl=timedelta(days=365))
    stop = asyncio.Event()
    relay = asyncio.create_task(runtime.jobs["governance.outbox_relay"](stop))
    try:
        async with running_server([servicer], token_verifier=verifier) as channel:
            yield Harness(channel, issuer, runtime, HumanityMirror(migrated_database, clock))
    finally:
        stop.set()
        await relay
        await fanout.close()


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def make_community(h: Harness, admin_id: str, **rules: object) -> pb.Community:
    response = await h.client(admin_id).create_community(
        pb.CreateCommunityRequest(
            name="Chemistry lab",
            rules=pb.CommunityRules(
                voting_method=SINGLE_CHOICE,
                voting_mode=OFF_CHAIN,
                quorum_bps=1000,
                approval_threshold_bps=5001,
                default_voting_period=timedelta(days=2),
                proposer_role=MEMBER,
                open_membership=True,
                **rules,  # type: ignore[arg-type]
            ),
        )
    )
    return response.community


async def test_unauthenticated_calls_are_refused(harness: Harness) -> None:
    anonymous = stub(Stub, harness.channel)
    error = await rpc_error(anonymous.list_communities(pb.ListCommunitiesRequest()))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_errors_on_the_wire(harness: Harness) -> None:
    admin, outsider = user(), user()
    c = await make_community(harness, admin.user_id)
    assert c.rules.default_voting_period == timedelta(days=2) and c.member_count == 1
    client = harness.client(admin.user_id)

    error = await rpc_error(client.create_community(pb.CreateCommunityRequest(name="")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [("name", "is required")]
    error = await rpc_error(
        client.create_community(
            pb.CreateCommunityRequest(name="Y", rules=pb.CommunityRules(quorum_bps=1))
        )
    )
    assert field_violations(error) == [("rules.voting_method", "must be set to a known value")]
    error = await rpc_error(
        client.create_community(pb.CreateCommunityRequest(name="chemistry LAB"))
    )
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    error = await rpc_error(
        client.set_member_role(pb.SetMemberRoleRequest(community_id=c.id, user_id=outsider.user_id))
    )
    assert field_violations(error) == [("role", "must be set to a known value")]
    error = await rpc_error(
        harness.client(outsider.user_id).set_member_role(
            pb.SetMemberRoleRequest(community_id=c.id, user_id=outsider.user_id, role=ADMIN)
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(client.get_proposal(pb.GetProposalRequest(proposal_id="nope")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = await rpc_error(
        client.create_proposal(pb.CreateProposalRequest(community_id=c.id, title="T"))
    )
    assert field_violations(error) == [("kind", "is required")]
    created = await client.create_proposal(
        pb.CreateProposalRequest(community_id=c.id, title="Buy goggles", kind=GENERAL)
    )
    p = created.proposal
    assert [o.label for o in p.options] == ["For", "Against", "Abstain"]
    assert p.status == pb.ProposalStatus.ACTIVE and p.quorum_bps == 1000
    assert p.voting_ends_at - p.voting_starts_at == timedelta(days=2)
    error = await rpc_error(client.finalize_proposal(pb.FinalizeProposalRequest(proposal_id=p.id)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    error = await rpc_error(
        client.cast_vote(pb.CastVoteRequest(proposal_id=p.id, choices=[pb.VoteChoice(0)]))
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION  # admin is not a verified human
    error = await rpc_error(
        client.get_standards(pb.GetStandardsRequest(community_id=c.id, kind=STANDARDS_UNSPECIFIED))
    )
    assert field_violations(error) == [("kind", "must be set to a known value")]


async def test_twenty_concurrent_vote_rpcs_count_once(harness: Harness) -> None:
    admin, voter = user(), user()
    c = await make_community(harness, admin.user_id)
    client = harness.client(voter.user_id)
    await client.join_community(pb.JoinCommunityRequest(community_id=c.id))
    await verify(harness.mirror, harness.runtime.clock, voter)
    p = (
        await harness.client(admin.user_id).create_proposal(
            pb.CreateProposalRequest(community_id=c.id, title="T", kind=GENERAL)
        )
    ).proposal

    async def vote(i: int) -> pb.CastVoteResponse | grpc.aio.AioRpcError:
        try:
            return await client.cast_vote(
                pb.CastVoteRequest(
                    proposal_id=p.id, choices=[pb.VoteChoice(i % 2)], request_id=f"r{i}"
                )
            )
        except grpc.aio.AioRpcError as error:
            return error

    results = await asyncio.gather(*(vote(i) for i in range(20)))
    ok = [r for r in results if isinstance(r, pb.CastVoteResponse)]
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1
    assert {e.code() for e in errors} == {grpc.StatusCode.ALREADY_EXISTS}
    tally = (await client.get_tally(pb.GetTallyRequest(proposal_id=p.id))).tally
    assert (tally.total_voters == 1 and tally.eligible_voters == 0) or tally.total_voters == 1
    got = await client.get_proposal(pb.GetProposalRequest(proposal_id=p.id))
    assert got.my_vote.choices == ok[0].vote.choices


async def test_watch_proposal_streams_votes_and_status(harness: Harness) -> None:
    admin, voter, outsider = user(), user(), user()
    c = await make_community(harness, admin.user_id)
    vclient = harness.client(voter.user_id)
    await vclient.join_community(pb.JoinCommunityRequest(community_id=c.id))
    await verify(harness.mirror, harness.runtime.clock, voter, admin)
    aclient = harness.client(admin.user_id)
    p = (
        await aclient.create_proposal(
            pb.CreateProposalRequest(community_id=c.id, title="T", kind=GENERAL)
        )
    ).proposal

    denied = harness.client(outsider.user_id).watch_proposal(
        pb.WatchProposalRequest(proposal_id=p.id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in denied:
            pass
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED

    received: list[pb.WatchProposalResponse] = []

    async def watch() -> None:
        async for update in vclient.watch_proposal(pb.WatchProposalRequest(proposal_id=p.id)):
            received.append(update)
            if update.kind == pb.ProposalEventKind.ANCHOR_CHANGED:
                return

    watcher = asyncio.create_task(watch())
    fanout = harness.runtime.fanout
    for _ in range(3000):  # until the server subscribed: nothing published from then is lost
        if fanout._watchers:
            break
        await asyncio.sleep(0.01)
    await vclient.cast_vote(pb.CastVoteRequest(proposal_id=p.id, choices=[pb.VoteChoice(0)]))
    harness.runtime.clock.advance(timedelta(days=2))
    finalized = await aclient.finalize_proposal(pb.FinalizeProposalRequest(proposal_id=p.id))
    assert finalized.proposal.status == pb.ProposalStatus.SUCCEEDED
    assert finalized.proposal.anchor.status == common.AnchorStatus.PENDING
    # The chain translator anchors the result and says so.
    anchors = AnchorMirror(harness.runtime.database, harness.runtime.clock)
    anchored = Event(
        "chain.interaction_anchored",
        key="learner-unused",
        payload={
            "domain": "governance",
            "record_id": p.id,
            "batch_id": "0x676f7665726e616e6365" + "0" * 15 + "1",
            "root": "0xabc",
            "block": 42,
            "tx_hash": "0xfeed",
            "leaf_index": 0,
            "status": "anchored",
        },
        occurred_at=harness.runtime.clock.now(),
    )
    assert await anchors.handle(anchored)
    assert not await anchors.handle(anchored)  # redelivery
    await asyncio.wait_for(watcher, timeout=30)
    assert [u.kind for u in received] == [
        pb.ProposalEventKind.VOTE_CAST,
        pb.ProposalEventKind.STATUS_CHANGED,
        pb.ProposalEventKind.ANCHOR_CHANGED,
    ]
    assert received[0].proposal.tally.total_voters == 1
    assert received[1].proposal.status == pb.ProposalStatus.SUCCEEDED
    assert received[1].proposal.tally.final
    anchor = received[2].proposal.anchor
    assert anchor.status == common.AnchorStatus.ANCHORED
    assert (anchor.block_number, anchor.tx_hash, anchor.merkle_root) == (42, "0xfeed", "0xabc")


async def test_standards_change_over_grpc(harness: Harness) -> None:
    admin = user()
    c = await make_community(harness, admin.user_id)
    await verify(harness.mirror, harness.runtime.clock, admin)
    client = harness.client(admin.user_id)
    p = (
        await client.create_proposal(
            pb.CreateProposalRequest(
                community_id=c.id,
                title="Rules v1",
                kind=STANDARDS_CHANGE,
                standards_change=pb.StandardsChange(
                    kind=VALIDATION_RULES,
                    content='{"min_score": 0.5}',
                    content_type="application/json",
                ),
                request_id="std-1",
            )
        )
    ).proposal
    assert p.standards_change.content == '{"min_score": 0.5}'
    vote = await client.cast_vote(
        pb.CastVoteRequest(proposal_id=p.id, choices=[pb.VoteChoice(0)], request_id="v1")
    )
    assert vote.tally.leading_option_index == 0
    harness.runtime.clock.advance(timedelta(days=2))
    await client.finalize_proposal(pb.FinalizeProposalRequest(proposal_id=p.id))
    executed = await client.execute_proposal(pb.ExecuteProposalRequest(proposal_id=p.id))
    assert executed.proposal.status == pb.ProposalStatus.EXECUTED
    assert executed.adopted_standards.version == 1
    versions = await client.list_standards_versions(
        pb.ListStandardsVersionsRequest(community_id=c.id, kind=VALIDATION_RULES)
    )
    assert [doc.version for doc in versions.documents] == [1]
    listed = await client.list_proposals(
        pb.ListProposalsRequest(community_id=c.id, statuses=[pb.ProposalStatus.EXECUTED])
    )
    assert [x.id for x in listed.proposals] == [p.id]
