"""The read API of Starknet JSON-RPC 0.10 (``starknet_api_openrpc.json``) and
``starknet_getCompiledCasm`` (``starknet_executables.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chain.node import errors
from chain.node.codec import (
    BlockId,
    parse_event_filter,
    parse_felt,
    parse_felt_list,
    parse_function_call,
    parse_int,
    require_key,
    require_object,
)
from chain.node.registry import block_id_param, flags_param, method, required
from chain.node.transactions import parse_broadcasted

if TYPE_CHECKING:
    from chain.node.node import DevNode

SPEC_VERSION = "0.10.2"
TX_FLAGS = ("INCLUDE_PROOF_FACTS",)
MAX_ESTIMATE_TXS = 64
ETH_ADDRESS_BOUND = 2**160


def with_proof_facts(tx: dict[str, Any], flags: set[str]) -> dict[str, Any]:
    """``INCLUDE_PROOF_FACTS``: INVOKE v3 transactions show their proof facts (empty when
    they carry none; this node refuses transactions that carry some)."""
    if "INCLUDE_PROOF_FACTS" in flags and tx.get("type") == "INVOKE":
        return {**tx, "proof_facts": tx.get("proof_facts", [])}
    return tx


@method("starknet_specVersion")
def _spec_version(node: DevNode, p: dict[str, Any]) -> str:
    return SPEC_VERSION


@method("starknet_chainId")
def _chain_id(node: DevNode, p: dict[str, Any]) -> str:
    return hex(node.chain_id)


@method("starknet_syncing")
def _syncing(node: DevNode, p: dict[str, Any]) -> bool:
    return False


@method("starknet_blockNumber")
def _block_number(node: DevNode, p: dict[str, Any]) -> int:
    return node.latest_block_number()


@method("starknet_blockHashAndNumber")
def _block_hash_and_number(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    block = node.resolve_block(BlockId(tag="latest"))
    return {"block_hash": hex(block.hash), "block_number": block.number}


@method("starknet_getBlockWithTxHashes", "block_id")
def _block_with_tx_hashes(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.block_json(block_id_param(p), "hashes")


@method("starknet_getBlockWithTxs", "block_id", "response_flags")
def _block_with_txs(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    flags = flags_param(p, "response_flags", TX_FLAGS)
    body = node.block_json(block_id_param(p), "txs")
    body["transactions"] = [with_proof_facts(t, flags) for t in body["transactions"]]
    return body


@method("starknet_getBlockWithReceipts", "block_id", "response_flags")
def _block_with_receipts(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    flags = flags_param(p, "response_flags", TX_FLAGS)
    body = node.block_json(block_id_param(p), "receipts")
    body["transactions"] = [
        {**item, "transaction": with_proof_facts(item["transaction"], flags)}
        for item in body["transactions"]
    ]
    return body


@method("starknet_getBlockTransactionCount", "block_id")
def _block_tx_count(node: DevNode, p: dict[str, Any]) -> int:
    return len(node.block_json(block_id_param(p), "hashes")["transactions"])


@method("starknet_getStateUpdate", "block_id", "contract_addresses")
def _state_update(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    addresses = p.get("contract_addresses")
    wanted = None if addresses is None else set(parse_felt_list(addresses, "contract_addresses"))
    return node.state_update_json(block_id_param(p), wanted)


@method("starknet_getNonce", "block_id", "contract_address")
def _get_nonce(node: DevNode, p: dict[str, Any]) -> str:
    address = parse_felt(required(p, "contract_address"), "contract_address")
    return hex(node.nonce_at(address, block_id_param(p)))


@method("starknet_getClassHashAt", "block_id", "contract_address")
def _class_hash_at(node: DevNode, p: dict[str, Any]) -> str:
    address = parse_felt(required(p, "contract_address"), "contract_address")
    return hex(node.class_hash_at(address, block_id_param(p)))


@method("starknet_getClassAt", "block_id", "contract_address")
def _class_at(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    address = parse_felt(required(p, "contract_address"), "contract_address")
    block_id = block_id_param(p)
    return node.class_json(node.class_hash_at(address, block_id), block_id)


@method("starknet_getClass", "block_id", "class_hash")
def _get_class(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    class_hash = parse_felt(required(p, "class_hash"), "class_hash")
    return node.class_json(class_hash, block_id_param(p))


@method("starknet_getStorageAt", "contract_address", "key", "block_id", "response_flags")
def _storage_at(node: DevNode, p: dict[str, Any]) -> Any:
    address = parse_felt(required(p, "contract_address"), "contract_address")
    key = parse_felt(required(p, "key"), "key")
    value, updated = node.storage_at(address, key, block_id_param(p))
    if "INCLUDE_LAST_UPDATE_BLOCK" in flags_param(
        p, "response_flags", ("INCLUDE_LAST_UPDATE_BLOCK",)
    ):
        return {"value": hex(value), "last_update_block": updated}
    return hex(value)


@method(
    "starknet_getStorageProof",
    "block_id",
    "class_hashes",
    "contract_addresses",
    "contracts_storage_keys",
)
def _storage_proof(node: DevNode, p: dict[str, Any]) -> Any:
    # Keikochain keeps no Merkle-Patricia tries (its state root is a chain of state-diff
    # commitments): there is nothing to prove against, for any block, as on
    # starknet-devnet.
    node.resolve_block(block_id_param(p))
    raise errors.storage_proof_not_supported()


@method("starknet_call", "request", "block_id")
def _call(node: DevNode, p: dict[str, Any]) -> list[str]:
    call = parse_function_call(required(p, "request"))
    return [hex(v) for v in node.call(call, block_id_param(p))]


@method("starknet_estimateFee", "request", "simulation_flags", "block_id")
def _estimate_fee(node: DevNode, p: dict[str, Any]) -> list[dict[str, Any]]:
    request = required(p, "request")
    if not isinstance(request, list) or len(request) > MAX_ESTIMATE_TXS:
        raise errors.invalid_params(f"request: expected a list of at most {MAX_ESTIMATE_TXS}")
    flags = flags_param(p, "simulation_flags", ("SKIP_VALIDATE",))
    txs = [parse_broadcasted(item, f"request[{i}]") for i, item in enumerate(request)]
    return node.estimate_fee(
        txs, skip_validate="SKIP_VALIDATE" in flags, block_id=block_id_param(p)
    )


@method("starknet_estimateMessageFee", "message", "block_id")
def _estimate_message_fee(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    message = require_object(required(p, "message"), "message")
    from_address = parse_felt(
        require_key(message, "from_address", "message"), "message.from_address"
    )
    if from_address >= ETH_ADDRESS_BOUND:
        raise errors.invalid_params("message.from_address: not an Ethereum address")
    return node.estimate_message_fee(
        to_address=parse_felt(require_key(message, "to_address", "message"), "message.to_address"),
        selector=parse_felt(
            require_key(message, "entry_point_selector", "message"), "message.entry_point_selector"
        ),
        from_address=from_address,
        payload=parse_felt_list(require_key(message, "payload", "message"), "message.payload"),
        block_id=block_id_param(p),
    )


@method("starknet_getMessagesStatus", "transaction_hash")
def _messages_status(node: DevNode, p: dict[str, Any]) -> Any:
    # Keikochain has no L1: no L1 transaction ever sent it a message.
    parse_felt(required(p, "transaction_hash"), "transaction_hash")
    raise errors.txn_hash_not_found()


@method("starknet_getTransactionByHash", "transaction_hash", "response_flags")
def _tx_by_hash(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    flags = flags_param(p, "response_flags", TX_FLAGS)
    tx = node.transaction_json(parse_felt(required(p, "transaction_hash"), "transaction_hash"))
    return with_proof_facts(tx, flags)


@method("starknet_getTransactionByBlockIdAndIndex", "block_id", "index", "response_flags")
def _tx_by_block_index(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    flags = flags_param(p, "response_flags", TX_FLAGS)
    index = parse_int(required(p, "index"), "index")
    return with_proof_facts(node.transaction_by_index_json(block_id_param(p), index), flags)


@method("starknet_getTransactionReceipt", "transaction_hash")
def _receipt(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.receipt_json(parse_felt(required(p, "transaction_hash"), "transaction_hash"))


@method("starknet_getTransactionStatus", "transaction_hash")
def _status(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.status_json(parse_felt(required(p, "transaction_hash"), "transaction_hash"))


@method("starknet_getEvents", "filter")
def _events(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.events_json(parse_event_filter(required(p, "filter")))


@method("starknet_getCompiledCasm", "class_hash")
def _compiled_casm(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.compiled_casm_json(parse_felt(required(p, "class_hash"), "class_hash"))
