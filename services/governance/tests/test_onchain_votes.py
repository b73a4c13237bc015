"""An on-chain proposal's vote through the governance service: after its own checks
(verified human member, window, ballot) the service hands the vote to the chain port
naming the voter's humanity commitment (which the humanity mirror keeps from identity's
event), and records it with the vote's transaction. The port here records calls; the
real port, signing with the voter's own account on a dev node, runs in
tests/test_onchain_voting_e2e.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from services.governance import domain as d
from services.governance.humanity import HumanityMirror
from services.governance.onchain import ChainProposal, ChainResult
from services.governance.service import GovernanceService, NewProposal
from services.governance.storage import GovernanceRepository
from services.governance.tests.conftest import humanity_event, rules, user
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import FailedPrecondition
from services.kit.events import Event


@dataclass
class RecordingChain:
    """The chain port: proposals get ids 1, 2...; each vote call is recorded."""

    votes: list[tuple[str, str, int, str]] = field(default_factory=list)
    proposals: int = 0

    async def create_proposal(self, **_: object) -> ChainProposal:
        self.proposals += 1
        return ChainProposal(hex(self.proposals), "0xc1", 1)

    async def finalize(self, onchain_id: str, options_count: int) -> ChainResult:
        raise AssertionError("not finalized here")

    async def read_votes(self, onchain_id: str, options_count: int) -> tuple[tuple[int, ...], int]:
        counted = [0] * options_count
        for vote in self.votes:
            counted[vote[2]] += 1
        return tuple(counted), len(self.votes)

    async def cast_vote(
        self, onchain_id: str, voter_commitment: str, option: int, request_id: str
    ) -> str:
        self.votes.append((onchain_id, voter_commitment, option, request_id))
        return hex(0xF00 + len(self.votes))


def verified(user_id: str, clock: FixedClock, commitment: str | None) -> Event:
    event = humanity_event(user_id, True, clock)
    if commitment is not None:
        event = replace(event, payload={**event.payload, "humanity_commitment": commitment})
    return event


@pytest.fixture
def chain() -> RecordingChain:
    return RecordingChain()


async def test_the_vote_goes_on_chain_under_the_voters_commitment(
    migrated_database: Database, clock: FixedClock, chain: RecordingChain
) -> None:
    service = GovernanceService(migrated_database, clock, onchain=chain)
    mirror = HumanityMirror(migrated_database, clock)
    admin, voter = user(), user()
    await mirror.handle(verified(admin.user_id, clock, "0xa11ce"))
    await mirror.handle(verified(voter.user_id, clock, None))
    community = await service.communities.create_community(
        admin,
        name="On chain",
        description="",
        rules=rules(voting_mode=d.VotingMode.ON_CHAIN),
        initial_standards="",
        initial_validation_rules="",
        request_id="",
    )
    await service.communities.join_community(voter, community.id)
    view = await service.proposals.create_proposal(
        admin,
        NewProposal(
            community_id=community.id,
            title="Fridays",
            body="",
            kind=d.ProposalKind.GENERAL,
            options=(),
            standards_change=None,
            rules_change=None,
            voting_starts_at=None,
            voting_ends_at=clock.now() + timedelta(hours=1),
            request_id="",
        ),
    )
    proposal = view.proposal
    assert proposal.onchain_proposal_id == "0x1"

    # Verified, but identity named no commitment: nothing on chain to vote from.
    with pytest.raises(FailedPrecondition, match="not registered on chain"):
        await service.voting.cast_vote(voter, proposal.id, [d.Choice(0)], "v")
    assert chain.votes == []

    vote, live = await service.voting.cast_vote(admin, proposal.id, [d.Choice(1)], "a-1")
    assert chain.votes == [("0x1", "0xa11ce", 1, "a-1")]
    assert vote.tx_hash == "0xf01"
    assert [o.votes for o in live.tally.options] == [0.0, 1.0, 0.0]  # read from the chain
    replay, _ = await service.voting.cast_vote(admin, proposal.id, [d.Choice(1)], "a-1")
    assert replay.tx_hash == "0xf01" and len(chain.votes) == 1  # nothing sent again


async def test_the_mirror_keeps_the_commitment(
    migrated_database: Database, clock: FixedClock
) -> None:
    mirror = HumanityMirror(migrated_database, clock)
    who = user().user_id

    async def commitment() -> str:
        async with migrated_database.session() as session:
            return await GovernanceRepository(session).human_commitment(who)

    await mirror.handle(verified(who, clock, "0xbeef"))
    assert await commitment() == "0xbeef"
    clock.advance(timedelta(seconds=1))
    await mirror.handle(verified(who, clock, None))  # kept
    assert await commitment() == "0xbeef"
    clock.advance(timedelta(seconds=1))
    await mirror.handle(verified(who, clock, "not hex"))
    assert await commitment() == "0xbeef"
    clock.advance(timedelta(seconds=1))
    await mirror.handle(humanity_event(who, False, clock))
    assert await commitment() == ""  # a revoked human votes no more
