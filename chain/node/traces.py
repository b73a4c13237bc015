"""Transaction traces (``TRANSACTION_TRACE`` of the trace API, spec 0.10).

A trace is built from the call trees the Cairo VM returns for each phase of a transaction
(validation, constructor, execution, fee transfer) when it runs, and stored with the
block, so ``traceTransaction`` reads it back instead of executing anything again.
"""

from __future__ import annotations

from typing import Any

from chain.node.blocks import state_diff_json
from chain.node.codec import hex_list
from chain.node.execution import Execution
from chain.node.fees import L2_GAS_PER_STEP
from chain.vm import Invocation


def invocation_json(inv: Invocation) -> dict[str, Any]:
    """``FUNCTION_INVOCATION``."""
    return {
        "contract_address": hex(inv.contract_address),
        "entry_point_selector": hex(inv.entry_point_selector),
        "calldata": hex_list(inv.calldata),
        "caller_address": hex(inv.caller_address),
        "class_hash": hex(inv.class_hash),
        "entry_point_type": inv.entry_point_type,
        "call_type": inv.call_type,
        "result": hex_list(inv.result),
        "calls": [invocation_json(inner) for inner in inv.calls],
        "events": [
            {"order": e.order, "keys": hex_list(e.keys), "data": hex_list(e.data)}
            for e in inv.events
        ],
        "messages": [],
        "execution_resources": {"l1_gas": 0, "l2_gas": inv.n_steps * L2_GAS_PER_STEP},
        "is_reverted": inv.failed,
    }


def trace_json(run: Execution) -> dict[str, Any]:
    """The trace of one executed transaction, of its own type."""
    body: dict[str, Any] = {
        "type": run.tx.type,
        "state_diff": state_diff_json(run.journal.diff()),
        "execution_resources": run.usage.to_resources(),
    }
    if run.validate is not None:
        body["validate_invocation"] = invocation_json(run.validate)
    if run.fee_transfer is not None:
        body["fee_transfer_invocation"] = invocation_json(run.fee_transfer)
    if run.tx.type == "INVOKE":
        if run.revert_reason is not None:
            body["execute_invocation"] = {"revert_reason": run.revert_reason}
        else:
            assert run.execute is not None
            body["execute_invocation"] = invocation_json(run.execute)
    elif run.tx.type == "DEPLOY_ACCOUNT":
        assert run.constructor is not None
        body["constructor_invocation"] = invocation_json(run.constructor)
    return body
