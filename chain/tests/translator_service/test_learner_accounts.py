"""One Starknet account per learner, on a real dev node and both engines: humans
registered through the translator's RegisterHumanity RPC each get an account of their
own, deployed by DEPLOY_ACCOUNT and funded by the operator, from which their humanity is
registered; no pool, no ceiling (25 at once here; 100 on the whole platform in
tests/test_onchain_voting_e2e.py). Then on-chain voting through Keiko: a
proposal created, votes cast by CastGovernanceVote, each signed by the voter's own account
and counted on chain under it, and the proposal finalized.

Proof-of-humanity enrollment itself (iris and genome pipeline) is not run here: it costs
seconds of CPU per human; the registrations come through the translator's RPC exactly as
identity sends them after enrollment (services/identity/tests/test_humanity_chain.py
covers that link with the real pipeline).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from nacl.signing import SigningKey

from chain.client import KeikoChain
from chain.node.genesis import GENESIS_BOUNDS
from chain.node.process import NodeProcess, start_node_process
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BatchPolicy
from chain.translator.governance import OnChainGovernance
from chain.translator.keys import KeyVault
from chain.translator.learner_accounts import (
    DEPLOYED,
    LearnerAccounts,
    LearnerAccountSettings,
    LearnerAccountStore,
)
from chain.translator.ports import ChainConnection, ClientAnchorChain, chain_config_from_env
from chain.translator.service import ChainTranslator
from chain.translator.servicer import ChainServicer
from chain.translator.storage import ChainStore
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.auth import TokenIssuer
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.grpc.client import stub
from services.kit.grpc.testing import access_token, running_server, token_pair

# 100 humans, each from their own account, are registered on the whole platform by
# tests/test_onchain_voting_e2e.py (KEIKO_TEST_HUMANS); here one wave of concurrent
# registrations shows what the translator records for each and the funding batches.
HUMANS = int(os.environ.get("KEIKO_TEST_TRANSLATOR_HUMANS", "25"))
CONCURRENCY = 25  # registrations in flight at once


@dataclass
class Stack:
    node: NodeProcess
    accounts: LearnerAccounts
    connection: ChainConnection
    channel: grpc.aio.Channel
    issuer: TokenIssuer
    as_learner: dict[str, pb.ChainServiceStub]

    @property
    def service(self) -> pb.ChainServiceStub:
        """Identity's service token, fresh for each call (a long run outlives one)."""
        token = access_token(self.issuer, "identity-svc", "service")
        # Registrations wait their turn behind the others in flight: no 30 s default.
        return stub(pb.ChainServiceStub, self.channel, access_token=token, timeout=900)


def increase_time(node: NodeProcess, seconds: int) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "devnet_increaseTime", "params": {"time": seconds}}
    ).encode()
    request = urllib.request.Request(
        node.rpc_url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert "result" in json.loads(answer.read())


@pytest.fixture
async def stack(tmp_path: Path, chain_db: Database) -> AsyncIterator[Stack]:
    node = await asyncio.to_thread(
        start_node_process, tmp_path / "chain", accounts=2, log_path=tmp_path / "node.log"
    )
    clock = SystemClock()
    config = chain_config_from_env(data_dir=tmp_path, rpc_url=node.rpc_url, environ={})
    connection = ChainConnection(config.rpc_url, config.account, config.deployment_file)
    store = ChainStore(chain_db, clock)
    chain = ClientAnchorChain(connection)
    engine = AnchoringEngine(store, chain, clock, EngineSettings(policy=BatchPolicy.of(16, 500)))
    vault = KeyVault(os.urandom(32))
    # The dev node's prices are fixed: the learners' transactions skip fee estimation.
    accounts = LearnerAccounts(
        LearnerAccountStore(chain_db, clock),
        vault,
        connection,
        settings=LearnerAccountSettings(fixed_bounds=GENESIS_BOUNDS),
    )
    translator = ChainTranslator(
        store, vault, chain, engine, connection=connection, accounts=accounts
    )
    governance = OnChainGovernance(chain_db, clock, store, accounts, connection)
    issuer, verifier = token_pair(clock)
    try:
        async with running_server(
            [ChainServicer(translator, governance=governance)], token_verifier=verifier
        ) as channel:
            learners = {
                name: stub(pb.ChainServiceStub, channel, access_token=access_token(issuer, name))
                for name in ("human-0", "human-1")
            }
            yield Stack(node, accounts, connection, channel, issuer, learners)
    finally:
        await connection.close()
        await asyncio.to_thread(node.stop)


async def register(stack: Stack, i: int) -> pb.RegisterHumanityResponse:
    key = SigningKey(i.to_bytes(32, "big"))
    return await stack.service.register_humanity(
        pb.RegisterHumanityRequest(
            user_id=f"human-{i}",
            commitment=hex(0xC0FFEE0000 + i),
            ed25519_public_key=bytes(key.verify_key).hex(),
            request_id=f"register-{i}",
        )
    )


@pytest.mark.engines
@pytest.mark.timeout(3600)  # a hang guard: each human is two transactions in the Cairo VM
async def test_each_human_registers_from_an_account_of_their_own(stack: Stack) -> None:
    operator = await stack.connection.get()
    operator_nonce = await operator.nonce()
    started = time.perf_counter()
    # Registrations arrive at once, as after a busy enrollment day: the operator funds
    # the new accounts in a few multicalls (group commit), each account deploys itself.
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> pb.RegisterHumanityResponse:
        async with gate:
            return await register(stack, i)

    answers = await asyncio.gather(*(one(i) for i in range(HUMANS)))
    for answer in answers:
        assert answer.status == common.AnchorStatus.ANCHORED and answer.tx_hash
    elapsed = time.perf_counter() - started
    funding_txs = await operator.nonce() - operator_nonce
    print(
        f"\n{HUMANS} humans registered, each from their own account, in {elapsed:.1f} s "
        f"({funding_txs} funding transactions)"
    )
    # The operator sent the funding only: fewer transactions than accounts it funded.
    assert 0 < funding_txs < HUMANS

    addresses = set()
    for i in range(HUMANS):
        account = await stack.accounts.store.get(f"human-{i}")
        assert account is not None and account.state == DEPLOYED and account.key_record
        assert await operator.registry.account_by_commitment(0xC0FFEE0000 + i) == account.address
        assert await operator.client.get_class_hash_at(account.address) == int(
            operator.deployment.extra["account_class_hash"], 16
        )
        addresses.add(account.address)
    assert len(addresses) == HUMANS
    assert await operator.registry.human_count() == HUMANS
    # A retry answers the same registration, and sends nothing.
    again = await register(stack, 0)
    first = await stack.accounts.store.get("human-0")
    assert first is not None and again.status == common.AnchorStatus.ANCHORED


@pytest.mark.engines
async def test_votes_through_keiko_are_signed_by_each_voter(stack: Stack) -> None:
    for i in range(3):
        await register(stack, i)
    now = datetime.now(UTC)
    created = await stack.service.create_governance_proposal(
        pb.CreateGovernanceProposalRequest(
            community_id="c1",
            proposal_id="p1",
            content_hash="0x1234",
            option_count=2,
            voting_starts_at=now - timedelta(seconds=5),
            voting_ends_at=now + timedelta(hours=1),
            quorum_bps=5000,
            request_id="create-p1",
        )
    )
    again = await stack.service.create_governance_proposal(
        pb.CreateGovernanceProposalRequest(
            community_id="c1",
            proposal_id="p1",
            content_hash="0x1234",
            option_count=2,
            voting_starts_at=now - timedelta(seconds=5),
            voting_ends_at=now + timedelta(hours=1),
            quorum_bps=5000,
            request_id="create-p1",
        )
    )
    assert again.onchain_proposal_id == created.onchain_proposal_id
    proposal = int(created.onchain_proposal_id, 16)

    def ballot(option: int) -> list[pb.OptionVotes]:
        return [pb.OptionVotes(option_index=option, votes_milli=1000)]

    votes = {}
    for i, option in ((0, 1), (1, 1), (2, 0)):
        cast = await stack.service.cast_governance_vote(
            pb.CastGovernanceVoteRequest(
                onchain_proposal_id=created.onchain_proposal_id,
                voter_commitment=hex(0xC0FFEE0000 + i),
                votes=ballot(option),
                request_id=f"vote-{i}",
            )
        )
        votes[i] = cast.tx_hash
    replay = await stack.service.cast_governance_vote(
        pb.CastGovernanceVoteRequest(
            onchain_proposal_id=created.onchain_proposal_id,
            voter_commitment=hex(0xC0FFEE0000),
            votes=ballot(1),
            request_id="vote-0",
        )
    )
    assert replay.tx_hash == votes[0]
    # A learner votes only for themselves; a split ballot does not fit the contract.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await stack.as_learner["human-0"].cast_governance_vote(
            pb.CastGovernanceVoteRequest(
                onchain_proposal_id=created.onchain_proposal_id,
                voter_commitment=hex(0xC0FFEE0001),
                votes=ballot(0),
            )
        )
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as split:
        await stack.service.cast_governance_vote(
            pb.CastGovernanceVoteRequest(
                onchain_proposal_id=created.onchain_proposal_id,
                voter_commitment=hex(0xC0FFEE0001),
                votes=[
                    pb.OptionVotes(option_index=0, votes_milli=500),
                    pb.OptionVotes(option_index=1, votes_milli=500),
                ],
            )
        )
    assert split.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    operator: KeikoChain = await stack.connection.get()
    assert await operator.governance.get_votes(proposal, 1) == 2
    assert await operator.governance.get_votes(proposal, 0) == 1
    for i in range(3):
        account = await stack.accounts.store.get(f"human-{i}")
        assert account is not None
        assert await operator.governance.has_voted(proposal, account.address)
        page = await operator.governance.events(
            "VoteCast", keys=[[proposal], [account.address]], from_block=0
        )
        assert [hex(e.tx_hash or 0) for e in page.events] == [votes[i]]

    await asyncio.to_thread(increase_time, stack.node, 2 * 3600)
    finalized = await stack.service.finalize_governance_proposal(
        pb.FinalizeGovernanceProposalRequest(
            onchain_proposal_id=created.onchain_proposal_id,
            tally_hash="0xabc",
            outcome=pb.GovernanceOutcome.SUCCEEDED,  # type: ignore[arg-type]
        )
    )
    assert finalized.tx_hash
    result = await operator.governance.get_proposal(proposal)
    assert result is not None and result.finalized and result.winning_option == 1
