"""The write API (``starknet_write_api.json``) and the trace API
(``starknet_trace_api_openrpc.json``) of Starknet JSON-RPC 0.10."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chain.node import errors
from chain.node.codec import parse_felt
from chain.node.registry import block_id_param, flags_param, method, required
from chain.node.transactions import (
    parse_broadcasted,
    parse_declare_v3,
    parse_deploy_account_v3,
    parse_invoke_v3,
)

if TYPE_CHECKING:
    from chain.node.node import DevNode

MAX_SIMULATED_TXS = 64


@method("starknet_addInvokeTransaction", "invoke_transaction")
def _add_invoke(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    tx = parse_invoke_v3(required(p, "invoke_transaction"))
    return {"transaction_hash": hex(node.add_transaction(tx))}


@method("starknet_addDeclareTransaction", "declare_transaction")
def _add_declare(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    tx = parse_declare_v3(required(p, "declare_transaction"))
    tx_hash = node.add_transaction(tx)
    return {"transaction_hash": hex(tx_hash), "class_hash": hex(tx.class_hash)}


@method("starknet_addDeployAccountTransaction", "deploy_account_transaction")
def _add_deploy_account(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    tx = parse_deploy_account_v3(required(p, "deploy_account_transaction"))
    tx_hash = node.add_transaction(tx)
    return {"transaction_hash": hex(tx_hash), "contract_address": hex(tx.contract_address)}


@method("starknet_traceTransaction", "transaction_hash")
def _trace(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    return node.trace_json(parse_felt(required(p, "transaction_hash"), "transaction_hash"))


@method("starknet_traceBlockTransactions", "block_id", "trace_flags")
def _trace_block(node: DevNode, p: dict[str, Any]) -> Any:
    flags = flags_param(p, "trace_flags", ("RETURN_INITIAL_READS",))
    return node.block_traces_json(block_id_param(p), "RETURN_INITIAL_READS" in flags)


@method("starknet_simulateTransactions", "block_id", "transactions", "simulation_flags")
def _simulate(node: DevNode, p: dict[str, Any]) -> Any:
    txs = required(p, "transactions")
    if not isinstance(txs, list) or len(txs) > MAX_SIMULATED_TXS:
        raise errors.invalid_params(f"transactions: expected a list of at most {MAX_SIMULATED_TXS}")
    flags = flags_param(
        p, "simulation_flags", ("SKIP_VALIDATE", "SKIP_FEE_CHARGE", "RETURN_INITIAL_READS")
    )
    parsed = [parse_broadcasted(item, f"transactions[{i}]") for i, item in enumerate(txs)]
    return node.simulate(
        parsed,
        skip_validate="SKIP_VALIDATE" in flags,
        skip_fee_charge="SKIP_FEE_CHARGE" in flags,
        block_id=block_id_param(p),
        initial_reads="RETURN_INITIAL_READS" in flags,
    )
