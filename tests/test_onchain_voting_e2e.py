"""One human, one account, one vote on chain, on the real platform (every service, the
gateway and the Keikochain dev node executing the compiled Cairo contracts), on both
engines:

100 humans are registered, each from a Starknet account of their own that the platform
deploys for them with DEPLOY_ACCOUNT: Ana enrolls her proof of humanity (iris and genome,
the real pipeline) over gRPC and identity registers it through the chain translator; the
99 others come through the translator's RegisterHumanity as identity sends them after an
enrollment (the pipeline costs seconds of CPU per human, so it runs for Ana only). Ana
then creates an on-chain community and proposal over GraphQL and votes with `castVote`:
the vote is signed by her own account, the contract counts it under that account, and the
GraphQL answer carries its transaction.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from chain.client import KeikoChain
from chain.translator.ports import chain_config_from_env
from keiko import registry
from keiko.authenticator import SoftwareAuthenticator
from keiko.platform import RunningPlatform, running_platform
from services.api.keiko.chain import v1 as chain_pb
from services.api.keiko.common import v1 as common
from services.api.keiko.identity import v1 as identity_pb
from services.identity.humanity import synthetic as syn
from services.identity.tests.test_humanity_rpcs import sample
from services.kit.auth import Principal, TokenIssuer, load_or_create_signing_key
from services.kit.clock import SystemClock
from services.kit.grpc.client import stub
from tests.e2e_support import (
    ORIGIN,
    GraphQLClient,
    e2e_settings,
    engine_env,
    gateway_http,
    log_in,
    migrate_all,
    sign_up_and_log_in,
)

HUMANS = int(os.environ.get("KEIKO_TEST_HUMANS", "100"))
CONCURRENCY = 25  # registrations in flight at once
SERVICE = Principal("keiko-identity", frozenset({"service"}))

STATUS = """
query { humanityStatus { registeredOnChain humanityCommitment registryTxHash } }"""
CREATE_COMMUNITY = """
mutation($input: CreateCommunityInput!) { createCommunity(input: $input) { id } }"""
CREATE_PROPOSAL = """
mutation($input: CreateProposalInput!) {
  createProposal(input: $input) { id votingMode status }
}"""
CAST_VOTE = """
mutation($id: ID!, $rid: String!) {
  castVote(proposalId: $id, choices: [{optionIndex: 1}], requestId: $rid) {
    vote { voterId txHash }
    tally { totalVoters options { optionIndex votes } }
  }
}"""


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningPlatform, GraphQLClient]]:
    engine_env(monkeypatch, database_url)
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    await migrate_all(database_url)
    async with (
        running_platform(settings, registry.resolve(None)) as running,
        gateway_http(running) as http,
    ):
        yield running, GraphQLClient(http)


async def raw(gql: GraphQLClient, query: str, **variables: object) -> dict[str, Any]:
    """The whole GraphQL answer, errors included."""
    response = await gql.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {gql.token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def register_others(running: RunningPlatform, count: int) -> None:
    """``count`` humans through the translator's RegisterHumanity, as identity sends them."""
    issuer = TokenIssuer(
        load_or_create_signing_key(running.settings.jwt_key_path), SystemClock(), timedelta(hours=1)
    )
    token = issuer.issue(SERVICE).token
    gate = asyncio.Semaphore(CONCURRENCY)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        chain = stub(chain_pb.ChainServiceStub, channel, access_token=token, timeout=600)

        async def one(i: int) -> chain_pb.RegisterHumanityResponse:
            async with gate:
                return await chain.register_humanity(
                    chain_pb.RegisterHumanityRequest(
                        user_id=f"other-human-{i}",
                        commitment=hex(0xC0FFEE0000 + i),
                        ed25519_public_key=(i + 1).to_bytes(32, "big").hex(),
                        request_id=f"register-{i}",
                    )
                )

        answers = await asyncio.gather(*(one(i) for i in range(count)))
    assert all(a.status == common.AnchorStatus.ANCHORED and a.tx_hash for a in answers)


async def enroll(running: RunningPlatform, token: str) -> None:
    """Ana's proof of humanity, over gRPC (the pipeline on a synthetic person)."""
    person = syn.make_person(2026, 7)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        identity = stub(identity_pb.IdentityServiceStub, channel, access_token=token, timeout=900)
        await identity.enroll_humanity(
            identity_pb.EnrollHumanityRequest(sample=sample(person, 0), request_id="ana-enroll")
        )


@pytest.mark.engines
@pytest.mark.timeout(1800)  # a hang guard: 100 humans are about 200 transactions in the VM
async def test_a_vote_through_keiko_is_counted_under_the_voters_own_account(
    platform: tuple[RunningPlatform, GraphQLClient],
) -> None:
    running, gql = platform
    ana = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
    await sign_up_and_log_in(gql, "ana@example.com", "Ana", ana)
    assert gql.token is not None
    await enroll(running, gql.token)  # identity registers it at once, from Ana's account
    await register_others(running, HUMANS - 1)
    await log_in(gql, "ana@example.com", ana)  # 100 registrations outlive an access token
    status: dict[str, object] = {}
    for _ in range(1200):  # identity registers Ana's commitment from her own account
        status = (await gql(STATUS))["humanityStatus"]
        if status["registeredOnChain"]:
            break
        await asyncio.sleep(0.25)
    assert status["registeredOnChain"], status
    commitment = int(str(status["humanityCommitment"]), 16)

    community = (
        await gql(
            CREATE_COMMUNITY,
            input={
                "name": "Chain circle",
                "rules": {"votingMethod": "SINGLE_CHOICE", "votingMode": "ON_CHAIN"},
            },
        )
    )["createCommunity"]
    proposal = (
        await gql(
            CREATE_PROPOSAL,
            input={"communityId": community["id"], "title": "Meet on Fridays", "requestId": "p"},
        )
    )["createProposal"]
    assert proposal["votingMode"] == "ON_CHAIN"
    for _ in range(1200):  # the governance mirror hears identity's humanity event
        voted = await raw(gql, CAST_VOTE, id=proposal["id"], rid="ana-vote")
        if not voted.get("errors"):
            break
        assert voted["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION", voted
        await asyncio.sleep(0.25)
    cast = voted["data"]["castVote"]
    assert cast["vote"]["txHash"].startswith("0x")
    assert cast["tally"]["totalVoters"] == 1
    # An open on-chain proposal's counts are the contract's.
    assert [o["votes"] for o in cast["tally"]["options"]] == [0.0, 1.0, 0.0]

    config = chain_config_from_env(
        data_dir=running.settings.data_dir, rpc_url=str(running.chain_rpc_url)
    )
    assert config.account is not None
    async with await KeikoChain.connect(
        config.rpc_url, config.account.address, config.account.private_key, config.deployment_file
    ) as chain:
        assert await chain.registry.human_count() == HUMANS
        onchain_id = await chain.governance.proposal_count()  # the one proposal made here
        assert onchain_id == 1
        ana_account = await chain.registry.account_by_commitment(commitment)
        assert ana_account is not None and ana_account != chain.address
        assert await chain.client.get_class_hash_at(ana_account) == int(
            chain.deployment.extra["account_class_hash"], 16
        )
        others = {
            await chain.registry.account_by_commitment(0xC0FFEE0000 + i) for i in range(HUMANS - 1)
        }
        assert len(others | {ana_account}) == HUMANS  # one account each
        assert await chain.governance.has_voted(onchain_id, ana_account)
        assert await chain.governance.get_votes(onchain_id, 1) == 1
        page = await chain.governance.events(
            "VoteCast", keys=[[onchain_id], [ana_account]], from_block=0
        )
        assert [hex(e.tx_hash or 0) for e in page.events] == [cast["vote"]["txHash"]]
        receipt = await chain.client.get_transaction_receipt(cast["vote"]["txHash"])
        transaction = await chain.client.get_transaction(receipt.transaction_hash)
        assert getattr(transaction, "sender_address", None) == ana_account  # signed by Ana's
