"""The dev node through starknet-py's real FullNodeClient and Account (and raw JSON-RPC
for the protocol errors starknet-py never sends)."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from starknet_py.constants import STRK_FEE_CONTRACT_ADDRESS
from starknet_py.contract import Contract
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.hash.storage import get_storage_var_address
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import (
    BlockStateUpdate,
    Call,
    DeclareTransactionV3,
    InvokeTransactionV3,
    PreConfirmedStarknetBlock,
    ResourceBounds,
    ResourceBoundsMapping,
    StarknetBlock,
    StarknetBlockWithReceipts,
    StarknetBlockWithTxHashes,
    TransactionExecutionStatus,
    TransactionFinalityStatus,
    TransactionStatus,
)
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.transaction_errors import TransactionRevertedError

from chain.deploy.deployer import UDC_ADDRESS
from chain.node.process import NodeProcess
from chain.tests.node.harness import LEARNING, DevChain, account_for, raw_rpc

ANCHOR = "interaction_anchor"
STRK = int(STRK_FEE_CONTRACT_ADDRESS, 16)

# Generous fixed bounds, for transactions sent without estimation (estimation refuses
# transactions that would fail, and some tests need them on chain).
BOUNDS = ResourceBoundsMapping(
    l1_gas=ResourceBounds(max_amount=0, max_price_per_unit=2 * 10**9),
    l2_gas=ResourceBounds(max_amount=10**8, max_price_per_unit=10**6),
    l1_data_gas=ResourceBounds(max_amount=10**5, max_price_per_unit=10**4),
)


def anchor_call(devchain: DevChain, batch_id: int, root: int, leaf_count: int = 4) -> Call:
    return Call(
        to_addr=devchain.address(ANCHOR),
        selector=get_selector_from_name("anchor_batch"),
        calldata=[batch_id, root, leaf_count, LEARNING],
    )


def record_call(devchain: DevChain, record_hash: int) -> Call:
    return Call(
        to_addr=devchain.address(ANCHOR),
        selector=get_selector_from_name("anchor_record"),
        calldata=[record_hash],
    )


async def test_chain_identity_and_blocks(client: FullNodeClient, devchain: DevChain) -> None:
    assert await client.spec_version() == "0.10.2"
    assert int(await client.get_chain_id(), 16) == devchain.chain_id
    assert await client.get_syncing_status() is False

    latest = await client.get_block_hash_and_number()
    assert latest.block_number == await client.get_block_number()
    by_number = await client.get_block_with_tx_hashes(block_number=latest.block_number)
    by_hash = await client.get_block_with_txs(block_hash=latest.block_hash)
    assert isinstance(by_number, StarknetBlockWithTxHashes)
    assert isinstance(by_hash, StarknetBlock)
    assert by_number.block_hash == by_hash.block_hash == latest.block_hash
    genesis = await client.get_block_with_receipts(block_number=0)
    assert isinstance(genesis, StarknetBlockWithReceipts)
    assert genesis.parent_hash == 0 and genesis.transactions == []
    # Keiko's contracts arrived after block 0 by real transactions, as on any chain: each
    # class by a DECLARE, each contract by an INVOKE of the Universal Deployer.
    declared: set[int] = set()
    deployed_by_udc = False
    for number in range(1, latest.block_number + 1):
        block = await client.get_block_with_txs(block_number=number)
        assert isinstance(block, StarknetBlock)
        for tx in block.transactions:
            if isinstance(tx, DeclareTransactionV3):
                declared.add(tx.class_hash)
            elif isinstance(tx, InvokeTransactionV3) and UDC_ADDRESS in tx.calldata:
                deployed_by_udc = True
        if number > 10:
            break  # genesis is the first few blocks
    keiko_classes = {
        int(ref["class_hash"], 16) for ref in devchain.deployment["contracts"].values()
    }
    assert keiko_classes <= declared and deployed_by_udc

    pending = await client.get_block()
    assert isinstance(pending, PreConfirmedStarknetBlock)
    assert pending.block_number >= latest.block_number + 1
    assert pending.l2_gas_price.price_in_fri > 0


async def test_invoke_call_receipt_and_events(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    address = devchain.address(ANCHOR)
    anchor = await Contract.from_address(address, provider=account0)  # getClassAt
    class_hash = int(devchain.deployment["contracts"][ANCHOR]["class_hash"], 16)
    assert await client.get_class_hash_at(address) == class_hash

    nonce = await account0.get_nonce()
    sent = await account0.execute_v3(
        [anchor_call(devchain, 101, 0xA1), anchor_call(devchain, 102, 0xA2)], auto_estimate=True
    )
    receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    assert receipt.execution_status == TransactionExecutionStatus.SUCCEEDED
    assert receipt.finality_status == TransactionFinalityStatus.ACCEPTED_ON_L2
    assert receipt.actual_fee.amount > 0 and receipt.messages_sent == []
    assert receipt.execution_resources.l2_gas > 0
    anchored = [e for e in receipt.events if e.from_address == address]
    assert [e.keys[1] for e in anchored] == [101, 102]
    assert await account0.get_nonce() == nonce + 1

    (batch,) = await anchor.functions["get_batch"].call(batch_id=101)
    assert batch["root"] == 0xA1 and batch["leaf_count"] == 4
    assert batch["block_number"] == receipt.block_number
    (anchored,) = await anchor.functions["is_root_anchored"].call(root=0xA2)
    assert anchored is True
    count = await client.get_storage_at(address, get_storage_var_address("batches_anchored"))
    assert isinstance(count, int) and count >= 2

    # State as of older blocks: calls, nonces and storage at the block before.
    previous = receipt.block_number - 1
    with pytest.raises(ClientError) as not_yet:
        await anchor.functions["get_batch"].call(batch_id=101, block_number=previous)
    assert not_yet.value.code == 40
    (then,) = await anchor.functions["get_batch"].call(
        batch_id=101, block_number=receipt.block_number
    )
    assert then["root"] == 0xA1
    assert await account0.get_nonce(block_number=previous) == nonce
    older = await client.get_storage_at(
        address, get_storage_var_address("batches_anchored"), block_number=previous
    )
    assert older == count - 2

    status = await client.get_transaction_status(sent.transaction_hash)
    assert status.finality_status == TransactionStatus.ACCEPTED_ON_L2
    assert status.execution_status == TransactionExecutionStatus.SUCCEEDED
    tx = await client.get_transaction(sent.transaction_hash)
    assert isinstance(tx, InvokeTransactionV3)
    assert tx.nonce == nonce and tx.sender_address == account0.address
    block = await client.get_block_with_receipts(block_number=receipt.block_number)
    assert block.transactions[0].receipt.transaction_hash == sent.transaction_hash
    assert await client.get_block_transaction_count(block_number=receipt.block_number) == 1
    by_index = await client.get_transaction_by_block_id(index=0, block_number=receipt.block_number)
    assert by_index.hash == sent.transaction_hash
    update = await client.get_state_update(block_number=receipt.block_number)
    assert isinstance(update, BlockStateUpdate)
    assert update.old_root != update.new_root
    # The anchor's writes, and the fee paid: the sender's and the sequencer's STRK balances.
    assert {d.address for d in update.state_diff.storage_diffs} == {address, STRK}
    assert [(n.contract_address, n.nonce) for n in update.state_diff.nonces] == [
        (account0.address, nonce + 1)
    ]
    pending_update = await client.get_state_update()
    assert pending_update.state_diff.storage_diffs == []

    selector = get_selector_from_name("BatchAnchored")
    height = receipt.block_number
    first = await client.get_events(
        address=address,
        keys=[[selector]],
        chunk_size=1,
        from_block_number=height,
        to_block_number=height,
    )
    assert [e.keys[1] for e in first.events] == [101]
    assert first.continuation_token is not None
    second = await client.get_events(
        address=address,
        keys=[[selector]],
        chunk_size=1,
        continuation_token=first.continuation_token,
        from_block_number=height,
        to_block_number=height,
    )
    assert [e.keys[1] for e in second.events] == [102]
    assert second.continuation_token is None
    assert second.events[0].transaction_hash == sent.transaction_hash
    assert second.events[0].event_index == 1
    followed = await client.get_events(
        address=address, keys=[[selector]], chunk_size=1, follow_continuation_token=True
    )
    assert {101, 102} <= {e.keys[1] for e in followed.events}
    by_key = await client.get_events(address=address, keys=[[selector], [102]], chunk_size=10)
    assert [e.keys[1] for e in by_key.events] == [102]


async def test_cairo_panic_gives_reverted_receipt(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    before = await client.get_block_number()
    with pytest.raises(ClientError) as estimated:
        await account0.execute_v3(anchor_call(devchain, 201, 0), auto_estimate=True)
    assert estimated.value.code == 41 and "empty root" in str(estimated.value.data)
    assert await client.get_block_number() == before  # estimation includes nothing

    nonce = await account0.get_nonce()
    sent = await account0.execute_v3(anchor_call(devchain, 201, 0), resource_bounds=BOUNDS)
    with pytest.raises(TransactionRevertedError, match="empty root"):
        await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    receipt = await client.get_transaction_receipt(sent.transaction_hash)
    assert receipt.execution_status == TransactionExecutionStatus.REVERTED
    assert receipt.revert_reason is not None and "empty root" in receipt.revert_reason
    # Only the fee transfer: the reverted execution emitted nothing.
    assert [e.from_address for e in receipt.events] == [STRK] and receipt.actual_fee.amount > 0
    assert receipt.block_number == before + 1
    assert await account0.get_nonce() == nonce + 1  # the nonce is spent all the same
    anchor = await Contract.from_address(devchain.address(ANCHOR), provider=client)
    with pytest.raises(ClientError) as missing:
        await anchor.functions["get_batch"].call(batch_id=201)
    assert missing.value.code == 40 and "unknown batch" in str(missing.value.data)


async def test_bad_signature_is_rejected(client: FullNodeClient, devchain: DevChain) -> None:
    honest = account_for(client, devchain, 1)
    impostor = account_for(client, devchain, 1, private_key=devchain.accounts[2].private_key)
    before = await client.get_block_number()
    nonce = await honest.get_nonce()

    with pytest.raises(ClientError) as wrong_key:
        await impostor.execute_v3(record_call(devchain, 0xBAD1), resource_bounds=BOUNDS)
    assert wrong_key.value.code == 55

    signed = await honest.sign_invoke_v3(record_call(devchain, 0xBAD2), resource_bounds=BOUNDS)
    tampered = dataclasses.replace(signed, calldata=[*signed.calldata[:-1], 0xBAD3])
    with pytest.raises(ClientError) as altered:
        await client.send_transaction(tampered)
    assert altered.value.code == 55

    assert await client.get_block_number() == before
    assert await honest.get_nonce() == nonce


async def test_replayed_and_out_of_order_nonces_are_rejected(
    client: FullNodeClient, devchain: DevChain
) -> None:
    account = account_for(client, devchain, 2)
    nonce = await account.get_nonce()
    signed = await account.sign_invoke_v3(record_call(devchain, 0xC1), resource_bounds=BOUNDS)
    sent = await client.send_transaction(signed)
    await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    after = await client.get_block_number()

    with pytest.raises(ClientError) as replay:
        await client.send_transaction(signed)
    assert replay.value.code == 52
    for bad_nonce in (nonce, nonce + 5):  # stale, then from the future
        other = await account.sign_invoke_v3(
            record_call(devchain, 0xC2), nonce=bad_nonce, resource_bounds=BOUNDS
        )
        with pytest.raises(ClientError) as rejected:
            await client.send_transaction(other)
        assert rejected.value.code == 52

    assert await client.get_block_number() == after
    assert await account.get_nonce() == nonce + 1


async def test_resource_bounds_are_enforced(client: FullNodeClient, devchain: DevChain) -> None:
    account = account_for(client, devchain, 3)
    cheap = dataclasses.replace(
        BOUNDS, l2_gas=ResourceBounds(max_amount=10**8, max_price_per_unit=1)
    )
    with pytest.raises(ClientError) as underpriced:
        await account.execute_v3(record_call(devchain, 0xD1), resource_bounds=cheap)
    assert underpriced.value.code == 53
    tiny = dataclasses.replace(
        BOUNDS, l2_gas=ResourceBounds(max_amount=10, max_price_per_unit=10**6)
    )
    with pytest.raises(ClientError) as too_little:
        await account.execute_v3(record_call(devchain, 0xD2), resource_bounds=tiny)
    assert too_little.value.code == 53


async def test_json_rpc_protocol_errors(
    session: aiohttp.ClientSession, node: NodeProcess, devchain: DevChain
) -> None:
    url = node.rpc_url

    async def call(method: str, params: object = None) -> dict[str, object]:
        body: dict[str, object] = {"jsonrpc": "2.0", "id": 7, "method": method}
        if params is not None:
            body["params"] = params
        status, answer = await raw_rpc(session, url, body)
        assert status == 200
        assert isinstance(answer, dict) and answer["id"] == 7
        return answer

    def code(answer: dict[str, object]) -> object:
        error = answer["error"]
        assert isinstance(error, dict)
        return error["code"]

    assert code(await call("starknet_noSuchMethod")) == -32601
    assert code(await call("starknet_getNonce", {"block_id": "latest"})) == -32602
    bad_felt = {"block_id": "latest", "contract_address": "0xZZ"}
    assert code(await call("starknet_getNonce", bad_felt)) == -32602
    assert code(await call("starknet_getNonce", {"block_id": "tomorrow", "x": 1})) == -32602
    assert code(await call("starknet_getBlockWithTxHashes", [{"block_number": 10**9}])) == 24
    assert code(await call("starknet_getTransactionReceipt", ["0x123"])) == 29
    assert code(await call("starknet_getNonce", ["latest", "0x1234"])) == 20
    unknown_entry = {
        "contract_address": hex(devchain.address(ANCHOR)),
        "entry_point_selector": hex(get_selector_from_name("no_such_function")),
        "calldata": [],
    }
    assert code(await call("starknet_call", [unknown_entry, "latest"])) == 21
    bad_token = {"filter": {"chunk_size": 1, "continuation_token": "abc"}}
    assert code(await call("starknet_getEvents", bad_token)) == 33
    too_big = {"filter": {"chunk_size": 10**6}}
    assert code(await call("starknet_getEvents", too_big)) == 31
    v1 = {"type": "INVOKE", "version": "0x1", "sender_address": "0x1", "calldata": []}
    assert code(await call("starknet_addInvokeTransaction", [v1])) == 61

    status, answer = await raw_rpc(session, url, b"{not json")
    assert status == 200 and answer["error"]["code"] == -32700
    status, answer = await raw_rpc(session, url, {"id": 1, "method": "starknet_chainId"})
    assert status == 200 and answer["error"]["code"] == -32600
    status, answer = await raw_rpc(session, url, [])
    assert status == 200 and answer["error"]["code"] == -32600
    status, answer = await raw_rpc(
        session,
        url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "starknet_chainId"},
            {"jsonrpc": "2.0", "method": "starknet_blockNumber"},  # notification
            {"jsonrpc": "2.0", "id": 2, "method": "starknet_nope"},
        ],
    )
    assert status == 200
    assert [(r["id"], "result" in r) for r in answer] == [(1, True), (2, False)]
    status, answer = await raw_rpc(
        session, url, {"jsonrpc": "2.0", "method": "starknet_blockNumber"}
    )
    assert status == 204 and answer is None
    async with session.get(url) as info:
        assert info.status == 200 and (await info.json())["spec_version"] == "0.10.2"
