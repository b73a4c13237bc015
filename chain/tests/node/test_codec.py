"""Parameter parsing and the v3 transaction hash, without a node."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starknet_py.constants import QUERY_VERSION_BASE
from starknet_py.net.client_models import ResourceBounds, ResourceBoundsMapping
from starknet_py.net.client_utils import _create_broadcasted_txn
from starknet_py.net.models.transaction import InvokeV3

from chain.node.codec import (
    PRE_CONFIRMED,
    BlockId,
    parse_block_id,
    parse_event_filter,
    parse_felt,
)
from chain.node.errors import RpcError
from chain.node.transactions import parse_invoke_v3

FELT = st.integers(min_value=0, max_value=2**251)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
U128 = st.integers(min_value=0, max_value=2**128 - 1)


# Each example hashes in pure Python and draws 251-bit integers: on a loaded CI machine
# both the per-example deadline and the generation-speed health check would fail a
# correct run, so neither applies; the example count stays fixed (deterministic cost).
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sender=FELT,
    nonce=FELT,
    calldata=st.lists(FELT, max_size=6),
    signature=st.lists(FELT, max_size=3),
    tip=U64,
    amounts=st.tuples(U64, U64, U64),
    prices=st.tuples(U128, U128, U128),
    query=st.booleans(),
)
def test_hash_of_a_broadcasted_invoke_matches_starknet_py(
    sender: int,
    nonce: int,
    calldata: list[int],
    signature: list[int],
    tip: int,
    amounts: tuple[int, int, int],
    prices: tuple[int, int, int],
    query: bool,
) -> None:
    bounds = ResourceBoundsMapping(
        l1_gas=ResourceBounds(amounts[0], prices[0]),
        l2_gas=ResourceBounds(amounts[1], prices[1]),
        l1_data_gas=ResourceBounds(amounts[2], prices[2]),
    )
    tx = InvokeV3(
        calldata=calldata,
        resource_bounds=bounds,
        signature=signature,
        nonce=nonce,
        sender_address=sender,
        version=3 + (QUERY_VERSION_BASE if query else 0),
        tip=tip,
    )
    parsed = parse_invoke_v3(_create_broadcasted_txn(tx))
    chain_id = int.from_bytes(b"KEIKOCHAIN_DEV", "big")
    assert parsed.compute_hash(chain_id) == tx.calculate_hash(chain_id)
    assert parsed.is_query is query
    assert parse_invoke_v3(parsed.to_rpc(1)) == parsed


@pytest.mark.parametrize(
    "value", ["0xZZ", "", None, True, 2**251 + 17 * 2**192 + 1, -1, [1], "0x" + "f" * 64]
)
def test_bad_felts_are_invalid_params(value: object) -> None:
    with pytest.raises(RpcError) as err:
        parse_felt(value, "x")
    assert err.value.code == -32602


def test_block_ids() -> None:
    assert parse_block_id("latest") == BlockId(tag="latest")
    assert parse_block_id("pre_confirmed") == PRE_CONFIRMED
    assert parse_block_id({"block_number": 3}) == BlockId(number=3)
    assert parse_block_id({"block_hash": "0x1f"}) == BlockId(hash=0x1F)
    for bad in ("pending_ish", {"block_number": -1}, {"block_number": 2**64}, {}, 5, None):
        with pytest.raises(RpcError) as err:
            parse_block_id(bad)
        assert err.value.code == -32602


def test_event_filter() -> None:
    flt = parse_event_filter(
        {"address": "0x1", "keys": [["0x2"], []], "chunk_size": 5, "from_block": "latest"}
    )
    assert flt.addresses == [1] and flt.keys == [[2], []] and flt.chunk_size == 5
    for bad in (
        {"chunk_size": 0},
        {"keys": "0x1", "chunk_size": 1},
        {"chunk_size": 1, "continuation_token": 3},
    ):
        with pytest.raises(RpcError):
            parse_event_filter(bad)


def test_only_v3_invokes() -> None:
    with pytest.raises(RpcError) as err:
        parse_invoke_v3({"type": "INVOKE", "version": "0x1", "sender_address": "0x1"})
    assert err.value.code == 61
    with pytest.raises(RpcError) as err:
        parse_invoke_v3({"type": "DECLARE", "version": "0x3"})
    assert err.value.code == -32602
