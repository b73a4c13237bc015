"""Starknet JSON-RPC method table and JSON-RPC 2.0 request handling.

``handle_payload`` takes the decoded HTTP body (one request object or a batch) and
returns what to send back (``None`` when everything was a notification). Each method
handler parses its params (by name or by position, as JSON-RPC allows) and calls the
:class:`~chain.node.node.DevNode`. Every failure becomes a JSON-RPC error object:
client mistakes with their spec code, anything unexpected as ``-32603`` with a masked
message and a logged stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chain.node.codec import (
    PRE_CONFIRMED,
    BlockId,
    parse_block_id,
    parse_event_filter,
    parse_felt,
    parse_function_call,
    parse_int,
    parse_invoke_v3,
)
from chain.node.errors import (
    RpcError,
    invalid_params,
    invalid_request,
    method_not_found,
    unsupported_tx_version,
)

if TYPE_CHECKING:
    from chain.node.node import DevNode

log = logging.getLogger("keikochain.rpc")

SPEC_VERSION = "0.10.2"

Handler = Callable[["DevNode", dict[str, Any]], Any]

_METHODS: dict[str, tuple[tuple[str, ...], Handler]] = {}


def method(name: str, *params: str) -> Callable[[Handler], Handler]:
    """Register ``starknet_<name>`` with its parameter names in spec order."""

    def register(fn: Handler) -> Handler:
        _METHODS[name] = (params, fn)
        return fn

    return register


def supported_methods() -> list[str]:
    return sorted(_METHODS)


def _block_id(p: dict[str, Any], required: bool = True) -> BlockId:
    if "block_id" not in p:
        if required:
            raise invalid_params("block_id: missing")
        return PRE_CONFIRMED
    return parse_block_id(p["block_id"])


def _req(p: dict[str, Any], key: str) -> Any:
    if key not in p:
        raise invalid_params(f"{key}: missing")
    return p[key]


# --- read API --------------------------------------------------------------------------


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
    return node.block_json(_block_id(p), "hashes")


@method("starknet_getBlockWithTxs", "block_id", "response_flags")
def _block_with_txs(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.block_json(_block_id(p), "txs")


@method("starknet_getBlockWithReceipts", "block_id", "response_flags")
def _block_with_receipts(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.block_json(_block_id(p), "receipts")


@method("starknet_getBlockTransactionCount", "block_id")
def _block_tx_count(node: DevNode, p: dict[str, Any]) -> int:
    return len(node.block_json(_block_id(p), "hashes")["transactions"])


@method("starknet_getStateUpdate", "block_id")
def _state_update(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.state_update_json(_block_id(p))


@method("starknet_getNonce", "block_id", "contract_address")
def _get_nonce(node: DevNode, p: dict[str, Any]) -> str:
    address = parse_felt(_req(p, "contract_address"), "contract_address")
    return hex(node.nonce_at(address, _block_id(p)))


@method("starknet_getClassHashAt", "block_id", "contract_address")
def _class_hash_at(node: DevNode, p: dict[str, Any]) -> str:
    address = parse_felt(_req(p, "contract_address"), "contract_address")
    return hex(node.class_hash_at(address, _block_id(p)))


@method("starknet_getClassAt", "block_id", "contract_address")
def _class_at(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    address = parse_felt(_req(p, "contract_address"), "contract_address")
    block_id = _block_id(p)
    return node.class_json(node.class_hash_at(address, block_id), block_id)


@method("starknet_getClass", "block_id", "class_hash")
def _get_class(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    class_hash = parse_felt(_req(p, "class_hash"), "class_hash")
    return node.class_json(class_hash, _block_id(p))


@method("starknet_getStorageAt", "contract_address", "key", "block_id", "response_flags")
def _storage_at(node: DevNode, p: dict[str, Any]) -> Any:
    address = parse_felt(_req(p, "contract_address"), "contract_address")
    key = parse_felt(_req(p, "key"), "key")
    value, updated = node.storage_at(address, key, _block_id(p))
    flags = p.get("response_flags") or []
    if not isinstance(flags, list):
        raise invalid_params("response_flags: expected a list")
    if "INCLUDE_LAST_UPDATE_BLOCK" in flags:
        return {"value": hex(value), "last_update_block": updated}
    return hex(value)


@method("starknet_call", "request", "block_id")
def _call(node: DevNode, p: dict[str, Any]) -> list[str]:
    call = parse_function_call(_req(p, "request"))
    return [hex(v) for v in node.call(call, _block_id(p))]


@method("starknet_estimateFee", "request", "simulation_flags", "block_id")
def _estimate_fee(node: DevNode, p: dict[str, Any]) -> list[dict[str, Any]]:
    request = _req(p, "request")
    if not isinstance(request, list):
        raise invalid_params("request: expected a list of transactions")
    flags = p.get("simulation_flags", [])
    if not isinstance(flags, list) or any(
        f not in ("SKIP_VALIDATE", "SKIP_FEE_CHARGE") for f in flags
    ):
        raise invalid_params("simulation_flags: expected a list of SKIP_VALIDATE")
    txs = []
    for i, item in enumerate(request):
        if isinstance(item, dict) and item.get("type", "INVOKE") != "INVOKE":
            raise unsupported_tx_version(f"request[{i}]: only INVOKE v3 is supported")
        txs.append(parse_invoke_v3(item, f"request[{i}]"))
    return node.estimate_fee(txs, skip_validate="SKIP_VALIDATE" in flags, block_id=_block_id(p))


@method("starknet_getTransactionByHash", "transaction_hash", "response_flags")
def _tx_by_hash(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.transaction_json(parse_felt(_req(p, "transaction_hash"), "transaction_hash"))


@method("starknet_getTransactionByBlockIdAndIndex", "block_id", "index", "response_flags")
def _tx_by_block_index(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    index = parse_int(_req(p, "index"), "index")
    return node.transaction_by_index_json(_block_id(p), index)


@method("starknet_getTransactionReceipt", "transaction_hash")
def _receipt(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.receipt_json(parse_felt(_req(p, "transaction_hash"), "transaction_hash"))


@method("starknet_getTransactionStatus", "transaction_hash")
def _status(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.status_json(parse_felt(_req(p, "transaction_hash"), "transaction_hash"))


@method("starknet_getEvents", "filter")
def _events(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.events_json(parse_event_filter(_req(p, "filter")))


# --- write API -------------------------------------------------------------------------


@method("starknet_addInvokeTransaction", "invoke_transaction")
def _add_invoke(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    tx = parse_invoke_v3(_req(p, "invoke_transaction"))
    if tx.is_query:
        raise unsupported_tx_version("query versions (2**128 + 3) are for estimation only")
    return {"transaction_hash": hex(node.add_invoke(tx))}


# --- devnet helpers (the names starknet-devnet uses) -----------------------------------


@method("devnet_increaseTime", "time")
def _increase_time(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    seconds = parse_int(_req(p, "time"), "time")
    return node.increase_time(seconds)


@method("devnet_getPredeployedAccounts")
def _predeployed(node: DevNode, p: dict[str, Any]) -> list[dict[str, Any]]:
    # Addresses only: private keys stay in accounts.json.
    return [{"address": hex(a)} for a in node.predeployed_addresses()]


# --- JSON-RPC 2.0 framing -------------------------------------------------------------


def _bind(method_name: str, names: tuple[str, ...], params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, list):
        if len(params) > len(names):
            raise invalid_params(f"{method_name} takes at most {len(names)} params")
        return dict(zip(names, params, strict=False))
    if isinstance(params, dict):
        unknown = set(params) - set(names)
        if unknown:
            raise invalid_params(f"unexpected params: {', '.join(sorted(unknown))}")
        return params
    raise invalid_params("params must be an array or an object")


def _error(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


def handle_request(node: DevNode, request: Any) -> dict[str, Any] | None:
    """One JSON-RPC request object; ``None`` for a notification (no ``id``)."""
    if not isinstance(request, dict):
        return _error(None, invalid_request("a request must be a JSON object"))
    req_id = request.get("id")
    if not isinstance(req_id, str | int | float | type(None)) or isinstance(req_id, bool):
        return _error(None, invalid_request("id must be a string, a number or null"))
    is_notification = "id" not in request
    name = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(name, str):
        return _error(req_id, invalid_request("expected jsonrpc '2.0' and a method name"))
    try:
        if name not in _METHODS:
            raise method_not_found(name)
        names, handler = _METHODS[name]
        result = handler(node, _bind(name, names, request.get("params")))
    except RpcError as err:
        return None if is_notification else _error(req_id, err)
    except Exception:
        log.exception("internal error in %s", name)
        return None if is_notification else _error(req_id, RpcError(-32603, "Internal error"))
    return None if is_notification else {"jsonrpc": "2.0", "id": req_id, "result": result}


def handle_payload(node: DevNode, payload: Any) -> Any:
    """A single request or a batch, as JSON-RPC 2.0 defines them."""
    if isinstance(payload, list):
        if not payload:
            return _error(None, invalid_request("empty batch"))
        responses = [r for r in (handle_request(node, item) for item in payload) if r is not None]
        return responses or None
    return handle_request(node, payload)
