"""KeikoChain bindings against the dev node, through starknet-py only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from starknet_py.devnet_utils.devnet_client import DevnetClient

from chain.client import (
    CallFailed,
    Deployment,
    ExecutionFailed,
    FeePolicy,
    KeikoChain,
    KeikoChainError,
    KeyRegistration,
    TransactionRejected,
)
from chain.node.process import NodeProcess
from chain.tests.node.harness import DevChain, raw_rpc
from chain.tests.node.test_rpc import BOUNDS


async def connect(
    node: NodeProcess, devchain: DevChain, index: int, **kwargs: object
) -> KeikoChain:
    account = devchain.accounts[index]
    return await KeikoChain.connect(
        node.rpc_url,
        account.address,
        account.private_key,
        node.deployment_file,
        poll_interval=0.05,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def operator(node: NodeProcess, devchain: DevChain) -> AsyncIterator[KeikoChain]:
    chain = await connect(node, devchain, 0)
    yield chain
    await chain.close()


@pytest.fixture
async def learner(node: NodeProcess, devchain: DevChain) -> AsyncIterator[KeikoChain]:
    chain = await connect(node, devchain, 1)
    yield chain
    await chain.close()


async def test_anchor_batch_and_reads(operator: KeikoChain) -> None:
    result = await operator.anchor.anchor_batch(501, 0x5001, 12, "learning")
    assert result.succeeded and result.revert_reason is None
    assert result.block_number is not None and result.actual_fee > 0
    event = result.event("BatchAnchored")
    assert event is not None
    assert event["batch_id"] == 501 and event["root"] == 0x5001 and event["leaf_count"] == 12
    assert event["operator"] == operator.address

    batch = await operator.anchor.get_batch(501)
    assert batch is not None
    assert (batch.root, batch.leaf_count, batch.domain) == (0x5001, 12, "learning")
    assert batch.anchored_by == operator.address and batch.block_number == result.block_number
    assert await operator.anchor.get_batch(999_999) is None
    assert await operator.anchor.is_root_anchored(0x5001)
    assert not await operator.anchor.is_root_anchored(0x5002)
    assert await operator.anchor.batch_id_by_root(0x5001) == 501
    assert await operator.anchor.is_operator(operator.address)
    assert await operator.anchor.admin() == operator.address


async def test_bounds_above_the_fee_pay_the_actual_fee(
    operator: KeikoChain, node: NodeProcess
) -> None:
    """A reused estimate x a margin is only a maximum: the node charges the gas used at
    its prices (as Starknet does), and the balance only has to cover the maximum."""
    estimate = await operator.anchor.estimate_anchor_batch(511, 0x5011, 3, "learning")
    bounds = estimate.to_resource_bounds(amount_multiplier=2.0, unit_price_multiplier=2.0)
    devnet = DevnetClient(node.rpc_url)
    before = (await devnet.get_account_balance(hex(operator.address), unit="FRI")).amount
    result = await operator.anchor.anchor_batch(511, 0x5011, 3, "learning", resource_bounds=bounds)
    after = (await devnet.get_account_balance(hex(operator.address), unit="FRI")).amount
    assert result.succeeded
    assert result.actual_fee == estimate.overall_fee
    assert before - after == result.actual_fee
    maximum = sum(
        b.max_amount * b.max_price_per_unit
        for b in (bounds.l1_gas, bounds.l2_gas, bounds.l1_data_gas)
    )
    assert maximum >= 4 * result.actual_fee


async def test_several_anchors_in_one_transaction_and_event_pages(operator: KeikoChain) -> None:
    calls = [
        operator.anchor.anchor_batch_call(600 + i, 0x6000 + i, 1, "reputation") for i in range(3)
    ]
    result = await operator.execute(calls)
    assert result.succeeded
    assert [e["batch_id"] for e in result.events] == [600, 601, 602]

    first = await operator.anchor.events(
        "BatchAnchored", from_block=result.block_number or 0, chunk_size=2
    )
    assert [e["batch_id"] for e in first.events] == [600, 601]
    assert first.continuation_token is not None
    rest = await operator.anchor.events(
        "BatchAnchored",
        from_block=result.block_number or 0,
        chunk_size=2,
        continuation_token=first.continuation_token,
    )
    assert [e["batch_id"] for e in rest.events] == [602] and rest.continuation_token is None
    assert rest.events[0].tx_hash == result.tx_hash
    assert rest.events[0].block_number == result.block_number
    seen = [e["batch_id"] async for e in operator.anchor.iter_events("BatchAnchored", chunk_size=1)]
    assert {600, 601, 602} <= set(seen)
    by_root = await operator.anchor.events("BatchAnchored", keys=[[], [0x6001]])
    assert [e["batch_id"] for e in by_root.events] == [601]


async def test_key_directory_binds_and_revokes(operator: KeikoChain) -> None:
    key = bytes(range(100, 132))
    binding = KeyRegistration(key, 0x5B1EC7, "custodial")
    result = await operator.anchor.register_keys([binding])
    assert result.succeeded
    event = result.event("KeyRegistered")
    assert event is not None and event["subject"] == 0x5B1EC7
    assert event["key"] == int.from_bytes(key, "big")
    found = await operator.anchor.get_key(key)
    assert found is not None
    assert (found.subject, found.kind, found.revoked) == (0x5B1EC7, "custodial", False)
    assert found.registered_block == result.block_number
    assert found.registered_by == operator.address
    assert await operator.anchor.get_key(bytes(32 - 1) + b"\x07") is None
    again = await operator.anchor.register_keys([binding])  # a retry: a no-op
    assert again.succeeded and again.events == []
    with pytest.raises(ExecutionFailed, match="key bound to another holder"):
        await operator.anchor.register_keys([KeyRegistration(key, 0x0111, "custodial")])
    revoked = await operator.anchor.revoke_key(key)
    after = await operator.anchor.get_key(key)
    assert after is not None and after.revoked and after.revoked_block == revoked.block_number


async def test_failures_surface_with_their_reason(
    operator: KeikoChain, learner: KeikoChain, node: NodeProcess, devchain: DevChain
) -> None:
    # Estimation runs the transaction: a panic is reported before anything is sent.
    height = await learner.block_number()
    with pytest.raises(ExecutionFailed, match="caller is not operator"):
        await learner.anchor.anchor_batch(701, 0x7001, 1, "learning")
    assert await learner.block_number() == height

    # With fixed bounds the transaction is sent and included as REVERTED.
    fixed = await connect(node, devchain, 0, fee=FeePolicy(fixed=BOUNDS))
    try:
        await fixed.anchor.anchor_batch(702, 0x7002, 1, "learning")
        duplicate = await fixed.anchor.anchor_batch(703, 0x7002, 1, "learning")
        assert duplicate.status == "REVERTED" and duplicate.block_number is not None
        assert duplicate.revert_reason is not None
        assert "root already anchored" in duplicate.revert_reason
        assert duplicate.events == []
        assert await fixed.anchor.get_batch(703) is None
    finally:
        await fixed.close()

    with pytest.raises(CallFailed, match="unknown root"):
        await operator.anchor.view("get_batch_id_by_root", root=0xDEAD)


async def test_nonces_of_concurrent_clients_of_one_account(
    node: NodeProcess, devchain: DevChain
) -> None:
    first = await connect(node, devchain, 3, fee=FeePolicy(fixed=BOUNDS))
    second = await connect(node, devchain, 3, fee=FeePolicy(fixed=BOUNDS))
    try:
        a = await first.anchor.anchor_record(0x3001)
        b = await second.anchor.anchor_record(0x3002)  # caches no nonce yet
        c = await first.anchor.anchor_record(0x3003)  # its cached nonce is stale: reloaded
        assert [r.succeeded for r in (a, b, c)] == [True, True, True]
        assert await first.nonce() == (await second.nonce())
        record = await first.anchor.get_record(0x3003)
        assert record is not None and record.learner == first.address
    finally:
        await first.close()
        await second.close()


async def test_registry_and_governance(
    learner: KeikoChain, node: NodeProcess, devchain: DevChain
) -> None:
    pubkey = bytes(range(1, 33))
    assert not await learner.registry.is_human(learner.address)
    registered = await learner.registry.register(0xC0FFEE, pubkey)
    assert registered.succeeded
    assert registered.event("Registered") is not None
    assert await learner.registry.is_human(learner.address)
    assert await learner.registry.get_key(learner.address) == pubkey
    assert await learner.registry.account_by_commitment(0xC0FFEE) == learner.address
    with pytest.raises(ExecutionFailed, match="account already registered"):
        await learner.registry.register(0xC0FFEF, bytes(range(2, 34)))

    block = await learner.client.get_block()
    now = block.timestamp
    created = await learner.governance.create_proposal(0xABC, 2, now - 10, now + 600, 1)
    event = created.event("ProposalCreated")
    assert event is not None
    proposal_id = event["proposal_id"]
    voted = await learner.governance.cast_vote(proposal_id, 1)
    assert voted.succeeded
    assert await learner.governance.has_voted(proposal_id, learner.address)
    with pytest.raises(ExecutionFailed, match="voting still open"):
        await learner.governance.finalize(proposal_id)

    # devnet_increaseTime moves the chain clock past the voting window.
    async with aiohttp.ClientSession() as session:
        status, answer = await raw_rpc(
            session,
            node.rpc_url,
            {"jsonrpc": "2.0", "id": 1, "method": "devnet_increaseTime", "params": {"time": 700}},
        )
    assert status == 200 and "result" in answer
    finalized = await learner.governance.finalize(proposal_id)
    assert finalized.succeeded
    proposal = await learner.governance.get_proposal(proposal_id)
    assert proposal is not None and proposal.finalized
    assert proposal.outcome == "succeeded" and proposal.winning_option == 1
    assert proposal.total_votes == 1


async def test_connect_checks_the_deployment(node: NodeProcess, devchain: DevChain) -> None:
    account = devchain.accounts[0]
    body = dict(devchain.deployment)
    with pytest.raises(KeikoChainError, match="chain"):
        await KeikoChain.connect(
            node.rpc_url, account.address, account.private_key, {**body, "chain_id": "0x1"}
        )
    wrong_class = {
        **body,
        "contracts": {
            "interaction_anchor": {
                "address": body["contracts"]["interaction_anchor"]["address"],
                "class_hash": body["contracts"]["governance"]["class_hash"],
            }
        },
    }
    with pytest.raises(KeikoChainError, match="class"):
        await KeikoChain.connect(node.rpc_url, account.address, account.private_key, wrong_class)
    # Explicit addresses work too (no class check without class hashes).
    explicit = Deployment.from_addresses(
        interaction_anchor=int(body["contracts"]["interaction_anchor"]["address"], 16)
    )
    chain = await KeikoChain.connect(node.rpc_url, account.address, account.private_key, explicit)
    try:
        assert await chain.anchor.batch_count() >= 0
        with pytest.raises(KeikoChainError, match="no governance"):
            _ = chain.governance
    finally:
        await chain.close()


async def test_a_bad_key_is_rejected(node: NodeProcess, devchain: DevChain) -> None:
    account = devchain.accounts[2]
    chain = await KeikoChain.connect(
        node.rpc_url,
        account.address,
        devchain.accounts[1].private_key,
        node.deployment_file,
        fee=FeePolicy(fixed=BOUNDS),
    )
    try:
        with pytest.raises(TransactionRejected) as rejected:
            await chain.anchor.anchor_record(0x4242)
        assert rejected.value.code == 55
    finally:
        await chain.close()
