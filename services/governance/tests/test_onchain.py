"""On-chain voting against the embedded Keikochain dev node running the real compiled
governance contract: the proposal is created on chain, a voter votes from their own
account, and finalization reads the chain's count back."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

import chain.cairo_compat  # noqa: F401  (the cairo-lang import fix, before chain imports)
from chain.client.core import KeikoChain
from chain.node.process import NodeProcess
from chain.tests.node.conftest import devchain, node  # noqa: F401  (session fixtures)
from chain.tests.node.harness import DevChain
from services.governance import domain as d
from services.governance.humanity import HumanityMirror
from services.governance.onchain import ContractVoting
from services.governance.service import GovernanceService, NewProposal
from services.governance.tests.conftest import rules, user, verify
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import FailedPrecondition


async def connect(node: NodeProcess, devchain: DevChain, index: int) -> KeikoChain:  # noqa: F811
    account = devchain.accounts[index]
    return await KeikoChain.connect(
        node.rpc_url, account.address, account.private_key, node.deployment()
    )


@pytest.fixture
async def chains(
    node: NodeProcess,  # noqa: F811
    devchain: DevChain,  # noqa: F811
) -> AsyncIterator[tuple[KeikoChain, KeikoChain]]:
    service_account = await connect(node, devchain, 0)
    voter_account = await connect(node, devchain, 1)
    try:
        yield service_account, voter_account
    finally:
        await service_account.close()
        await voter_account.close()


async def increase_chain_time(node: NodeProcess, seconds: int) -> None:  # noqa: F811
    body = {"jsonrpc": "2.0", "id": 1, "method": "devnet_increaseTime", "params": {"time": seconds}}
    async with aiohttp.ClientSession() as session, session.post(node.rpc_url, json=body) as r:
        reply = await r.json()
    assert "result" in reply, reply


async def test_on_chain_proposal_created_voted_and_read_back(
    migrated_database: Database,
    node: NodeProcess,  # noqa: F811
    chains: tuple[KeikoChain, KeikoChain],
) -> None:
    service_chain, voter_chain = chains
    clock = FixedClock(datetime.now(UTC))
    service = GovernanceService(migrated_database, clock, onchain=ContractVoting(service_chain))
    mirror = HumanityMirror(migrated_database, clock)
    admin = user()
    await verify(mirror, clock, admin)
    community = await service.communities.create_community(
        admin,
        name=f"On-chain {secrets.token_hex(4)}",
        description="",
        rules=rules(voting_mode=d.VotingMode.ON_CHAIN, quorum_bps=10_000),
        initial_standards="",
        initial_validation_rules="",
        request_id="",
    )
    view = await service.proposals.create_proposal(
        admin,
        NewProposal(
            community_id=community.id,
            title="Adopt peer review",
            body="",
            kind=d.ProposalKind.GENERAL,
            options=(),
            standards_change=None,
            rules_change=None,
            voting_starts_at=None,
            voting_ends_at=clock.now() + timedelta(minutes=2),
            request_id="",
        ),
    )
    proposal = view.proposal
    assert proposal.voting_mode is d.VotingMode.ON_CHAIN and proposal.onchain_proposal_id
    onchain_id = int(proposal.onchain_proposal_id, 16)
    on_chain = await service_chain.governance.get_proposal(onchain_id)
    assert on_chain is not None
    assert (on_chain.options_count, on_chain.quorum) == (3, 1)  # 100 % of 1 eligible voter
    assert on_chain.end == int(proposal.voting_ends_at.timestamp())

    # Identity announced no on-chain registration for the admin: Keiko has no account to
    # vote from. A human votes from their own account directly on the contract too.
    with pytest.raises(FailedPrecondition, match="not registered on chain"):
        await service.voting.cast_vote(admin, proposal.id, [d.Choice(0)], "")
    await voter_chain.registry.register(secrets.randbits(200) or 1, secrets.randbits(250) or 1)
    cast = await voter_chain.governance.cast_vote(onchain_id, 0)
    assert cast.succeeded
    live, _ = await service.proposals.get_proposal(admin, proposal.id)  # read from the contract
    assert [o.votes for o in live.tally.options] == [1.0, 0.0, 0.0] and not live.tally_final

    with pytest.raises(FailedPrecondition, match="voting is open until"):
        await service.lifecycle.finalize_proposal(admin, proposal.id)
    await increase_chain_time(node, 180)
    clock.advance(timedelta(minutes=3))
    final = await service.lifecycle.finalize_proposal(admin, proposal.id)
    assert final.status is d.ProposalStatus.SUCCEEDED
    assert [o.votes for o in final.tally.options] == [1.0, 0.0, 0.0]
    assert final.tally.total_voters == 1 and final.tally.quorum_reached
    assert final.proposal.anchor.status is d.AnchorStatus.ANCHORED
    assert final.proposal.anchor.tx_hash.startswith("0x")
    assert (await service_chain.governance.get_status(onchain_id)) == "succeeded"
    again = await service.lifecycle.finalize_proposal(admin, proposal.id)
    assert again.proposal.tally_digest == final.proposal.tally_digest


async def test_on_chain_mode_needs_the_contract_binding(migrated_database: Database) -> None:
    service = GovernanceService(migrated_database, FixedClock())
    with pytest.raises(FailedPrecondition, match="on-chain voting is not available"):
        await service.communities.create_community(
            user(),
            name="No chain",
            description="",
            rules=rules(voting_mode=d.VotingMode.ON_CHAIN),
            initial_standards="",
            initial_validation_rules="",
            request_id="",
        )
