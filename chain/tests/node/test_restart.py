"""A restarted node continues where it stopped: blocks, nonces, storage, anchors, events."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from starknet_py.contract import Contract
from starknet_py.net.client_models import StarknetBlockWithTxHashes, TransactionExecutionStatus
from starknet_py.net.full_node_client import FullNodeClient

from chain.node.process import astart_node_process, start_node_process
from chain.tests.node.harness import DevChain, account_for
from chain.tests.node.test_rpc import ANCHOR, BOUNDS, anchor_call, record_call


async def test_restart_keeps_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "chain"
    first = start_node_process(data_dir, accounts=2, log_path=tmp_path / "node.log")
    try:
        devchain = DevChain.load(first)
        async with aiohttp.ClientSession() as session:
            client = FullNodeClient(first.rpc_url, session=session)
            operator = account_for(client, devchain, 0)
            learner = account_for(client, devchain, 1)
            for account, call in (
                (operator, anchor_call(devchain, 7, 0x77)),
                (learner, record_call(devchain, 0x88)),
            ):
                sent = await account.execute_v3(call, resource_bounds=BOUNDS)
                await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
            before = await client.get_block_hash_and_number()
            nonces = [await operator.get_nonce(), await learner.get_nonce()]
            events_before = await client.get_events(
                address=devchain.address(ANCHOR), chunk_size=100
            )
    finally:
        assert first.stop() == 0

    deployment_before = devchain.deployment
    second = await astart_node_process(data_dir, accounts=2, log_path=tmp_path / "node.log")
    try:
        devchain = DevChain.load(second)
        assert devchain.deployment == deployment_before
        async with aiohttp.ClientSession() as session:
            client = FullNodeClient(second.rpc_url, session=session)
            operator = account_for(client, devchain, 0)
            learner = account_for(client, devchain, 1)
            assert await client.get_block_hash_and_number() == before
            assert [await operator.get_nonce(), await learner.get_nonce()] == nonces
            anchor = await Contract.from_address(devchain.address(ANCHOR), provider=client)
            (batch,) = await anchor.functions["get_batch"].call(batch_id=7)
            assert batch["root"] == 0x77
            (anchored,) = await anchor.functions["is_record_anchored"].call(record_hash=0x88)
            assert anchored is True
            events_after = await client.get_events(address=devchain.address(ANCHOR), chunk_size=100)
            assert events_after == events_before

            # The chain goes on: the next nonce is accepted, a replayed one is not.
            sent = await operator.execute_v3(anchor_call(devchain, 8, 0x99), resource_bounds=BOUNDS)
            receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
            assert receipt.execution_status == TransactionExecutionStatus.SUCCEEDED
            assert receipt.block_number == before.block_number + 1
            block = await client.get_block_with_tx_hashes(block_number=receipt.block_number)
            assert isinstance(block, StarknetBlockWithTxHashes)
            assert block.parent_hash == before.block_hash
    finally:
        assert await second.astop() == 0
