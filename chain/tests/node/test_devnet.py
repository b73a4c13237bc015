"""The dev node as a Starknet devnet, through starknet-py's own client, accounts and
WebSocket client (every answer deserialized with starknet-py's schemas): declare,
deploy-account, fees really charged, traces, simulation, compiled CASM, the devnet
helpers, the WebSocket subscriptions, and every spec method answering."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp
import pytest
from starknet_py.constants import STRK_FEE_CONTRACT_ADDRESS
from starknet_py.contract import Contract
from starknet_py.devnet_utils.devnet_client import DevnetClient
from starknet_py.hash.address import compute_address
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import (
    BlockTransactionTracesWithInitialReads,
    Call,
    DeclareTransactionTrace,
    DeployAccountTransactionTrace,
    InvokeTransactionTrace,
    RevertedFunctionInvocation,
    SierraContractClass,
    SimulatedTransactionsWithInitialReads,
    TraceFlag,
    TransactionExecutionStatus,
    TransactionStatus,
)
from starknet_py.net.executable_models import CasmClass
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.websockets.websocket_client import WebsocketClient

from chain.node.process import NodeProcess
from chain.tests.node.harness import DevChain, raw_rpc
from chain.tests.node.test_rpc import ANCHOR, BOUNDS, anchor_call, record_call
from chain.vm import BUILD_DIR

STRK = int(STRK_FEE_CONTRACT_ADDRESS, 16)
SEQUENCER = int.from_bytes(b"KEIKO_SEQUENCER", "big")

# The 38 methods a client can call in Starknet JSON-RPC 0.10 (starknet_api_openrpc.json,
# starknet_write_api.json, starknet_trace_api_openrpc.json, starknet_executables.json and
# the subscription methods of starknet_ws_api.json).
HTTP_METHODS = (
    "starknet_specVersion",
    "starknet_getBlockWithTxHashes",
    "starknet_getBlockWithTxs",
    "starknet_getBlockWithReceipts",
    "starknet_getStateUpdate",
    "starknet_getStorageAt",
    "starknet_getTransactionStatus",
    "starknet_getMessagesStatus",
    "starknet_getTransactionByHash",
    "starknet_getTransactionByBlockIdAndIndex",
    "starknet_getTransactionReceipt",
    "starknet_getClass",
    "starknet_getClassHashAt",
    "starknet_getClassAt",
    "starknet_getBlockTransactionCount",
    "starknet_call",
    "starknet_estimateFee",
    "starknet_estimateMessageFee",
    "starknet_blockNumber",
    "starknet_blockHashAndNumber",
    "starknet_chainId",
    "starknet_syncing",
    "starknet_getEvents",
    "starknet_getNonce",
    "starknet_getStorageProof",
    "starknet_addInvokeTransaction",
    "starknet_addDeclareTransaction",
    "starknet_addDeployAccountTransaction",
    "starknet_traceTransaction",
    "starknet_simulateTransactions",
    "starknet_traceBlockTransactions",
    "starknet_getCompiledCasm",
)
WS_METHODS = (
    "starknet_subscribeNewHeads",
    "starknet_subscribeEvents",
    "starknet_subscribeTransactionStatus",
    "starknet_subscribeNewTransactions",
    "starknet_subscribeNewTransactionReceipts",
    "starknet_unsubscribe",
)


def ws_url(node: NodeProcess) -> str:
    return f"ws://{node.host}:{node.port}/ws"


def variant_class() -> str:
    """A class the chain does not know: the account class with another ABI text. The
    class hash covers the ABI, so this is a new class; its program (and so its CASM and
    compiled class hash) is the account's."""
    sierra = json.loads((BUILD_DIR / "account.sierra.json").read_text())
    sierra["abi"] = json.dumps(sierra["abi"], indent=1)
    sierra.pop("sierra_program_debug_info", None)
    return json.dumps(sierra)


async def strk_balance(client: FullNodeClient, address: int) -> int:
    low, high = await client.call_contract(
        Call(STRK, get_selector_from_name("balance_of"), [address])
    )
    return low + (high << 128)


async def test_fee_is_charged_in_strk(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    before = await account0.get_balance(STRK)
    sequencer_before = await strk_balance(client, SEQUENCER)
    sent = await account0.execute_v3(record_call(devchain, 0xFEE1), auto_estimate=True)
    receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    fee = receipt.actual_fee.amount
    assert fee > 0 and receipt.actual_fee.unit.value == "FRI"
    assert await account0.get_balance(STRK) == before - fee
    assert await strk_balance(client, SEQUENCER) == sequencer_before + fee
    transfer = receipt.events[-1]  # the fee transfer comes last
    assert transfer.from_address == STRK
    assert transfer.keys[1:] == [account0.address, SEQUENCER]
    assert transfer.data == [fee, 0]

    # The estimate is the fee: the same transaction, estimated then sent.
    call = record_call(devchain, 0xFEE2)
    estimate = await account0.estimate_fee(
        await account0.sign_invoke_v3(call, resource_bounds=BOUNDS)
    )
    sent = await account0.execute_v3(call, resource_bounds=BOUNDS)
    receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    assert not isinstance(estimate, list)
    assert receipt.actual_fee.amount == estimate.overall_fee


async def test_insufficient_balance_is_refused(client: FullNodeClient, devchain: DevChain) -> None:
    devnet = DevnetClient(devchain.rpc_url)
    key = KeyPair.from_private_key(0x5EED1)
    class_hash = int(devchain.deployment["account_class_hash"], 16)
    address = compute_address(
        class_hash=class_hash, constructor_calldata=[key.public_key], salt=key.public_key
    )
    with pytest.raises(ClientError) as poor:
        await Account.deploy_account_v3(
            address=address,
            class_hash=class_hash,
            salt=key.public_key,
            key_pair=key,
            client=client,
            resource_bounds=BOUNDS,
        )
    assert poor.value.code == 54  # INSUFFICIENT_ACCOUNT_BALANCE
    assert (await devnet.get_account_balance(address, unit="FRI")).amount == 0


async def test_deploy_account_pays_its_own_fee(client: FullNodeClient, devchain: DevChain) -> None:
    devnet = DevnetClient(devchain.rpc_url)
    key = KeyPair.from_private_key(0xACC0_0001)
    class_hash = int(devchain.deployment["account_class_hash"], 16)
    address = compute_address(
        class_hash=class_hash, constructor_calldata=[key.public_key], salt=key.public_key
    )
    minted = await devnet.mint(address, 10**18, "FRI")
    assert minted.new_balance == 10**18 and minted.tx_hash
    deployed = await Account.deploy_account_v3(
        address=address,
        class_hash=class_hash,
        salt=key.public_key,
        key_pair=key,
        client=client,
        auto_estimate=True,
    )
    await deployed.wait_for_acceptance(check_interval=0.05)
    receipt = await client.get_transaction_receipt(deployed.hash)
    assert receipt.execution_status == TransactionExecutionStatus.SUCCEEDED
    assert receipt.contract_address == address
    account = deployed.account
    assert await client.get_class_hash_at(address) == class_hash
    assert await account.get_nonce() == 1
    assert await account.get_balance(STRK) == 10**18 - receipt.actual_fee.amount

    trace = await client.trace_transaction(deployed.hash)
    assert isinstance(trace, DeployAccountTransactionTrace)
    assert trace.constructor_invocation.contract_address == address
    assert trace.validate_invocation is not None
    assert trace.validate_invocation.entry_point_selector == get_selector_from_name(
        "__validate_deploy__"
    )
    assert trace.fee_transfer_invocation is not None

    # The new account works: it sends an invoke of its own.
    sent = await account.execute_v3(record_call(devchain, 0xACC1), auto_estimate=True)
    done = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    assert done.execution_status == TransactionExecutionStatus.SUCCEEDED


async def test_declare_a_class_and_deploy_it_through_the_udc(
    client: FullNodeClient, account0: Account
) -> None:
    sierra = variant_class()
    casm = (BUILD_DIR / "account.casm.json").read_text()
    declared = await Contract.declare_v3(
        account0, compiled_contract=sierra, compiled_contract_casm=casm, auto_estimate=True
    )
    await declared.wait_for_acceptance(check_interval=0.05)
    receipt = await client.get_transaction_receipt(declared.hash)
    assert receipt.execution_status == TransactionExecutionStatus.SUCCEEDED
    class_hash = declared.class_hash
    fetched = await client.get_class_by_hash(class_hash)
    assert isinstance(fetched, SierraContractClass)
    compiled = await client.get_compiled_casm(class_hash)
    assert isinstance(compiled, CasmClass) and len(compiled.bytecode) > 100
    trace = await client.trace_transaction(declared.hash)
    assert isinstance(trace, DeclareTransactionTrace)
    assert trace.validate_invocation is not None
    assert trace.state_diff is not None
    assert [c.class_hash for c in trace.state_diff.declared_classes] == [class_hash]

    # Declaring it again is refused; so is a wrong compiled class hash.
    with pytest.raises(ClientError) as estimated:
        await Contract.declare_v3(
            account0, compiled_contract=sierra, compiled_contract_casm=casm, auto_estimate=True
        )
    assert estimated.value.code == 41 and "already declared" in str(estimated.value.data)
    with pytest.raises(ClientError) as again:
        await Contract.declare_v3(
            account0, compiled_contract=sierra, compiled_contract_casm=casm, resource_bounds=BOUNDS
        )
    assert again.value.code == 51
    other = json.loads(sierra)
    other["abi"] = other["abi"] + " "
    with pytest.raises(ClientError) as mismatch:
        await Contract.declare_v3(
            account0,
            compiled_contract=json.dumps(other),
            compiled_class_hash=0x1234,
            resource_bounds=BOUNDS,
        )
    assert mismatch.value.code == 60

    deployed = await declared.deploy_v3(constructor_args=[0xBEEF], auto_estimate=True)
    await deployed.wait_for_acceptance(check_interval=0.05)
    (key,) = await deployed.deployed_contract.functions["get_public_key"].call()
    assert key == 0xBEEF


async def test_traces_and_simulation(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    sent = await account0.execute_v3(anchor_call(devchain, 301, 0x301), auto_estimate=True)
    receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    trace = await client.trace_transaction(sent.transaction_hash)
    assert isinstance(trace, InvokeTransactionTrace)
    execute = trace.execute_invocation
    assert not isinstance(execute, RevertedFunctionInvocation)
    assert execute.contract_address == account0.address
    (inner,) = execute.calls
    assert inner.contract_address == devchain.address(ANCHOR)
    assert inner.entry_point_selector == get_selector_from_name("anchor_batch")
    assert [e.keys[1] for e in inner.events] == [301]
    assert trace.fee_transfer_invocation is not None
    assert trace.fee_transfer_invocation.contract_address == STRK
    block_traces = await client.trace_block_transactions(block_number=receipt.block_number)
    assert isinstance(block_traces, list)
    assert [t.transaction_hash for t in block_traces] == [sent.transaction_hash]
    with_reads = await client.trace_block_transactions(
        block_number=receipt.block_number, trace_flags=[TraceFlag.RETURN_INITIAL_READS]
    )
    assert isinstance(with_reads, BlockTransactionTracesWithInitialReads)
    reads = with_reads.initial_reads
    assert reads.nonces is not None and reads.storage is not None
    assert {n.contract_address for n in reads.nonces} == {account0.address}
    assert {r.contract_address for r in reads.storage} >= {devchain.address(ANCHOR), STRK}

    # Simulation: a success, then a revert shown in its trace; nothing is mined.
    height = await client.get_block_number()
    nonce = await account0.get_nonce()
    ok = await account0.sign_invoke_v3(
        anchor_call(devchain, 302, 0x302), nonce=nonce, resource_bounds=BOUNDS
    )
    bad = await account0.sign_invoke_v3(
        anchor_call(devchain, 303, 0), nonce=nonce + 1, resource_bounds=BOUNDS
    )
    simulated = await client.simulate_transactions([ok, bad])
    assert isinstance(simulated, list) and len(simulated) == 2
    first, second = simulated
    assert isinstance(first.transaction_trace, InvokeTransactionTrace)
    assert not isinstance(first.transaction_trace.execute_invocation, RevertedFunctionInvocation)
    assert first.fee_estimation.overall_fee > 0
    assert isinstance(second.transaction_trace, InvokeTransactionTrace)
    reverted = second.transaction_trace.execute_invocation
    assert (
        isinstance(reverted, RevertedFunctionInvocation) and "empty root" in reverted.revert_reason
    )
    # Skipping validation accepts an unsigned transaction; skipping the fee charge leaves
    # no fee transfer in the trace.
    unsigned = await account0.sign_invoke_v3(
        anchor_call(devchain, 304, 0x304), nonce=nonce, resource_bounds=BOUNDS
    )
    unsigned = dataclasses.replace(unsigned, signature=[])
    skipped_all = await client.simulate_transactions(
        [unsigned], skip_validate=True, skip_fee_charge=True
    )
    assert isinstance(skipped_all, list)
    (skipped,) = skipped_all
    assert isinstance(skipped.transaction_trace, InvokeTransactionTrace)
    assert skipped.transaction_trace.validate_invocation is None
    assert skipped.transaction_trace.fee_transfer_invocation is None
    read = await client.simulate_transactions([ok], return_initial_reads=True)
    assert isinstance(read, SimulatedTransactionsWithInitialReads)
    assert len(read.simulated_transactions) == 1
    assert read.initial_reads.nonces is not None
    assert [(n.contract_address, n.nonce) for n in read.initial_reads.nonces] == [
        (account0.address, nonce)
    ]
    with pytest.raises(ClientError) as refused:
        await client.simulate_transactions([unsigned])
    assert refused.value.code == 41
    assert await client.get_block_number() == height
    assert await account0.get_nonce() == nonce


async def test_state_update_of_some_contracts(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    sent = await account0.execute_v3(record_call(devchain, 0x5D1), auto_estimate=True)
    receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
    anchor = devchain.address(ANCHOR)
    full = await client.get_state_update(block_number=receipt.block_number)
    assert {d.address for d in full.state_diff.storage_diffs} == {anchor, STRK}
    only = await client.get_state_update(
        block_number=receipt.block_number, contract_addresses=[anchor]
    )
    assert [d.address for d in only.state_diff.storage_diffs] == [anchor]
    assert only.state_diff.nonces == []


async def test_proof_facts_are_refused(
    client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    signed = await account0.sign_invoke_v3(record_call(devchain, 0x9F1), resource_bounds=BOUNDS)
    body: dict[str, Any] = {
        "type": "INVOKE",
        "sender_address": hex(signed.sender_address),
        "calldata": [hex(x) for x in signed.calldata],
        "version": "0x3",
        "signature": [hex(x) for x in signed.signature],
        "nonce": hex(signed.nonce),
        "resource_bounds": {
            name: {"max_amount": hex(b.max_amount), "max_price_per_unit": hex(b.max_price_per_unit)}
            for name, b in (
                ("l1_gas", BOUNDS.l1_gas),
                ("l2_gas", BOUNDS.l2_gas),
                ("l1_data_gas", BOUNDS.l1_data_gas),
            )
        },
        "tip": "0x0",
        "paymaster_data": [],
        "account_deployment_data": [],
        "nonce_data_availability_mode": "L1",
        "fee_data_availability_mode": "L1",
        "proof_facts": ["0x1", "0x2"],
    }
    async with aiohttp.ClientSession() as session:
        _, answer = await raw_rpc(
            session,
            devchain.rpc_url,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "starknet_addInvokeTransaction",
                "params": [body],
            },
        )
    assert answer["error"]["code"] == 55 and "proof" in answer["error"]["data"]


async def test_devnet_helpers(devchain: DevChain) -> None:
    devnet = DevnetClient(devchain.rpc_url)
    accounts = await devnet.get_predeployed_accounts(with_balance=True)
    assert [a.address for a in accounts] == [a.address for a in devchain.accounts]
    assert accounts[0].balance is not None and accounts[0].balance.strk.amount > 0
    before = (await devnet.get_account_balance(accounts[3].address, unit="WEI")).amount
    minted = await devnet.mint(accounts[3].address, 12345, "WEI")
    assert minted.new_balance == before + 12345


async def test_spec_methods_all_answer(node: NodeProcess, devchain: DevChain) -> None:
    """No method of the specification is unknown to the node (-32601): called with no
    params, each answers a result or a spec error / invalid params."""
    async with aiohttp.ClientSession() as session:
        for name in HTTP_METHODS:
            _, answer = await raw_rpc(
                session, devchain.rpc_url, {"jsonrpc": "2.0", "id": 1, "method": name, "params": {}}
            )
            assert answer.get("error", {}).get("code") != -32601, (name, answer)
        _, proof = await raw_rpc(
            session,
            devchain.rpc_url,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "starknet_getStorageProof",
                "params": {"block_id": "latest"},
            },
        )
        assert proof["error"]["code"] == 42
        _, messages = await raw_rpc(
            session,
            devchain.rpc_url,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "starknet_getMessagesStatus",
                "params": {"transaction_hash": "0x1"},
            },
        )
        assert messages["error"]["code"] == 29
        async with session.ws_connect(ws_url(node)) as ws:
            for i, name in enumerate(WS_METHODS):
                await ws.send_json({"jsonrpc": "2.0", "id": i, "method": name, "params": {}})
                answer = await ws.receive_json(timeout=30)
                while "method" in answer:  # a notification of a subscription just opened
                    answer = await ws.receive_json(timeout=30)
                assert answer.get("error", {}).get("code") != -32601, (name, answer)


async def test_websocket_subscriptions(
    node: NodeProcess, client: FullNodeClient, account0: Account, devchain: DevChain
) -> None:
    ws = WebsocketClient(ws_url(node))
    await ws.connect()
    heads: list[Any] = []
    events: list[Any] = []
    statuses: list[Any] = []
    receipts: list[Any] = []
    arrived = asyncio.Event()
    try:
        heads_id = await ws.subscribe_new_heads(heads.append)
        await ws.subscribe_events(
            events.append,
            from_address=devchain.address(ANCHOR),
            keys=[[get_selector_from_name("RecordAnchored")]],
        )
        await ws.subscribe_new_transaction_receipts(
            receipts.append, sender_address=[account0.address]
        )
        sent = await account0.execute_v3(record_call(devchain, 0x3501), auto_estimate=True)

        def on_status(notification: Any) -> None:
            statuses.append(notification)
            arrived.set()

        await ws.subscribe_transaction_status(on_status, sent.transaction_hash)
        receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
        await asyncio.wait_for(arrived.wait(), 30)
        for _ in range(300):
            if (
                any(h.result.block_number == receipt.block_number for h in heads)
                and events
                and receipts
            ):
                break
            await asyncio.sleep(0.05)
        assert heads[0].result.block_number <= receipt.block_number  # latest at subscription
        new_head = next(h for h in heads if h.result.block_number == receipt.block_number)
        assert new_head.result.block_hash == receipt.block_hash
        assert [e.result.keys[2] for e in events] == [0x3501]
        assert events[0].result.transaction_hash == sent.transaction_hash
        assert statuses[0].result.transaction_hash == sent.transaction_hash
        assert statuses[0].result.status.finality_status == TransactionStatus.ACCEPTED_ON_L2
        assert receipts[0].result.transaction_hash == sent.transaction_hash
        assert await ws.unsubscribe(heads_id) is True
    finally:
        await ws.disconnect()
