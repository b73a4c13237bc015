"""Reused fee estimates against the real embedded Keikochain node (a child process shared
with the client tests): the estimations the node served are counted at the client's
JSON-RPC layer."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from starknet_py.net.client_models import EstimatedFee, PriceUnit

from chain.node.fees import L2_GAS_PRICE_FRI
from chain.node.process import NodeProcess
from chain.tests.node.conftest import devchain, node  # noqa: F401  (fixtures)
from chain.tests.node.harness import DevChain
from chain.tests.translator_service.test_engine import queue
from chain.translator.anchor_fees import FeeReusePolicy, band_of
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BatchPolicy
from chain.translator.ports import ChainAccount, ChainConnection, ClientAnchorChain
from chain.translator.storage import ANCHORED, ChainStore
from services.kit.clock import FixedClock


@pytest.fixture
async def connection(
    node: NodeProcess,  # noqa: F811  (the imported fixture)
    devchain: DevChain,  # noqa: F811
) -> AsyncIterator[ChainConnection]:
    operator = devchain.accounts[0]
    account = ChainAccount(operator.address, operator.private_key)
    conn = ChainConnection(node.rpc_url, account, node.deployment_file)
    yield conn
    await conn.close()


async def count_rpc(connection: ChainConnection) -> Counter[str]:
    """Count the JSON-RPC methods the connection's client calls from now on."""
    rpc: Any = (await connection.get()).client._client
    inner = rpc.call
    calls: Counter[str] = Counter()

    async def counting(method_name: str, params: dict[str, Any] | None = None) -> Any:
        calls[method_name] += 1
        return await inner(method_name, params)

    rpc.call = counting
    return calls


async def test_the_engine_reuses_estimates_on_the_dev_node(
    store: ChainStore, clock: FixedClock, connection: ChainConnection
) -> None:
    settings = EngineSettings(
        policy=BatchPolicy(max_leaves=4, max_wait=timedelta(milliseconds=500)),
        fees=FeeReusePolicy(margin=1.5, refresh_sends=100),
    )
    engine = AnchoringEngine(store, ClientAnchorChain(connection), clock, settings)
    rpc = await count_rpc(connection)
    await queue(store, 12)
    await engine.step(force=True)
    batches = await store.list_batches()
    assert [b.state for b in batches] == [ANCHORED] * 3, [b.last_error for b in batches]
    # The dev node's receipts carry the decoded BatchAnchored event: no watcher needed.
    assert {b.confirmed_by for b in batches} == {"receipt"}
    assert rpc["estimateFee"] == 1 and rpc["addInvokeTransaction"] == 3

    # A reused estimate the node no longer accepts (here: bounds far below the gas the
    # validation needs) is refused; the batch is re-sent at once with a fresh estimate.
    band = band_of("learning", 4)
    engine.fees.learn(
        band,
        EstimatedFee(
            l1_gas_consumed=0,
            l1_gas_price=1,
            l2_gas_consumed=10,
            l2_gas_price=L2_GAS_PRICE_FRI,
            l1_data_gas_consumed=0,
            l1_data_gas_price=1,
            overall_fee=10 * L2_GAS_PRICE_FRI,
            unit=PriceUnit.FRI,
        ),
    )
    await queue(store, 4, 12)
    await engine.step(force=True)
    assert rpc["estimateFee"] == 2 and rpc["addInvokeTransaction"] == 5
    chain = await connection.get()
    batches = await store.list_batches()
    assert [b.state for b in batches] == [ANCHORED] * 4, [b.last_error for b in batches]
    for batch in batches:
        on_chain = await chain.anchor.get_batch(batch.batch_id)
        assert on_chain is not None and on_chain.root == batch.root
