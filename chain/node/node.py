"""The dev chain itself: state, transactions and mining (what it recorded is read back by
:class:`~chain.node.history.ChainHistory`, its base: blocks, receipts, traces, events).

``DevNode`` is single-threaded by design: the HTTP server calls it from one worker
thread only, the order in which transactions arrive is the order in which they are
executed, and each transaction is mined into its own block (instant mining).

A transaction (INVOKE, DECLARE or DEPLOY_ACCOUNT, v3) is executed by
:class:`~chain.node.execution.Executor` exactly as a Starknet sequencer would (validation
in the Cairo VM, execution, the fee paid in STRK); a refused transaction is never included
and leaves no trace. The block (header, transaction, receipt, trace, events, state diff)
is written to SQLite in one transaction; if that fails, the in-memory state is rolled back
too. Listeners (the WebSocket API) hear of every new block.
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.client_models import Call, ResourceBounds, ResourceBoundsMapping

from chain.client.core import execute_calldata
from chain.client.signer import fast_message_signature
from chain.node import errors
from chain.node.accounts import DevAccount
from chain.node.blocks import (
    SEQUENCER_ADDRESS,
    STARKNET_VERSION,
    block_header,
    event_json,
)
from chain.node.codec import BlockId, FunctionCall
from chain.node.execution import Execution, Executor, RunFlags
from chain.node.fees import L1_DATA_GAS_PRICE_FRI, L2_GAS_PRICE_FRI, block_prices, gas_usage
from chain.node.history import INITIAL_READS_KEY, ChainHistory
from chain.node.initial_reads import InitialReads
from chain.node.store import (
    CLASS_HASH,
    NONCE,
    STORAGE,
    ChainStore,
    CurrentState,
    StoredBlock,
    StoredTx,
)
from chain.node.system import INITIAL_BALANCE, STRK_ADDRESS, TOKENS
from chain.node.traces import trace_json
from chain.node.transactions import (
    BroadcastedTx,
    DeclareV3Request,
    DeployAccountV3Request,
    InvokeV3Request,
)
from chain.vm import (
    BlockContext,
    CairoRevert,
    CairoVM,
    ChainState,
    sierra_class_hash,
)
from chain.vm import DeclaredClass as VmDeclaredClass

log = logging.getLogger("keikochain.node")

MAX_MINT = 2**128 - 1
# Bounds of the node's own mint transactions: generous, at the chain's own prices.
MINT_BOUNDS = ResourceBoundsMapping(
    l1_gas=ResourceBounds(max_amount=0, max_price_per_unit=10**9),
    l2_gas=ResourceBounds(max_amount=10**8, max_price_per_unit=L2_GAS_PRICE_FRI),
    l1_data_gas=ResourceBounds(max_amount=10**5, max_price_per_unit=L1_DATA_GAS_PRICE_FRI),
)

BlockListener = Callable[[StoredBlock, list[StoredTx]], None]


class DevNode(ChainHistory):
    """One Keikochain dev chain over a :class:`ChainStore` and a :class:`CairoVM`."""

    def __init__(
        self,
        store: ChainStore,
        vm: CairoVM,
        *,
        chain_id: int,
        predeployed: list[DevAccount] | None = None,
        minter: DevAccount | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vm = vm
        self.chain_id = chain_id
        self._predeployed = list(predeployed or [])
        self._minter = minter
        self._clock = clock
        self._listeners: list[BlockListener] = []
        self._traced: list[dict[str, Any]] = []
        self.executor = Executor(
            vm, chain_id=chain_id, fee_token=STRK_ADDRESS, sequencer=SEQUENCER_ADDRESS
        )
        latest = store.latest_block_number()
        if latest is None:
            raise ValueError("the store holds no genesis block")
        block = store.block_by_number(latest)
        assert block is not None
        self._latest: StoredBlock = block
        self._time_offset = int(store.get_meta("time_offset") or "0")

    # ---------------------------------------------------------------- loading

    @staticmethod
    def vm_state_from_store(store: ChainStore) -> ChainState:
        current = store.load_current_state()
        state = ChainState(
            storage=current.storage, nonces=current.nonces, class_hashes=current.class_hashes
        )
        for declared in store.load_classes():
            state.classes[declared.class_hash] = VmDeclaredClass(
                sierra=json.dumps(declared.sierra), casm=json.dumps(declared.casm)
            )
            state.compiled_class_hashes[declared.class_hash] = declared.compiled_class_hash
        return state

    # ----------------------------------------------------------------- blocks

    def latest_block_number(self) -> int:
        return self._latest.number

    def _state_block(self, block_id: BlockId) -> int | None:
        """The block whose post-state a query reads; None means the live state."""
        if block_id.tag is not None:
            return None
        number = self.resolve_block(block_id).number
        return None if number == self._latest.number else number

    def _next_timestamp(self) -> int:
        return max(int(self._clock()) + self._time_offset, self._latest.header["timestamp"])

    def _pending_header(self) -> dict[str, Any]:
        return {
            "block_number": self._latest.number + 1,
            "timestamp": self._next_timestamp(),
            "sequencer_address": hex(SEQUENCER_ADDRESS),
            **block_prices(),
            "l1_da_mode": "BLOB",
            "starknet_version": STARKNET_VERSION,
        }

    # ------------------------------------------------------------------ state

    def _require_contract(self, address: int, at_block: int | None) -> None:
        if at_block is None:
            deployed = address in self.vm.state.class_hashes
        else:
            deployed = self.store.has_value_at(CLASS_HASH, address, at_block)
        if not deployed:
            raise errors.contract_not_found()

    def nonce_at(self, address: int, block_id: BlockId) -> int:
        at = self._state_block(block_id)
        self._require_contract(address, at)
        if at is None:
            return self.vm.get_nonce(address)
        return self.store.value_at(NONCE, address, 0, at)[0]

    def class_hash_at(self, address: int, block_id: BlockId) -> int:
        at = self._state_block(block_id)
        self._require_contract(address, at)
        if at is None:
            return self.vm.get_class_hash_at(address)
        return self.store.value_at(CLASS_HASH, address, 0, at)[0]

    def storage_at(self, address: int, key: int, block_id: BlockId) -> tuple[int, int]:
        at = self._state_block(block_id)
        self._require_contract(address, at)
        return self.store.value_at(STORAGE, address, key, self._latest.number if at is None else at)

    def class_json(self, class_hash: int, block_id: BlockId) -> dict[str, Any]:
        at = self._state_block(block_id)
        declared_at = self.store.class_declared_at(class_hash)
        if declared_at is None or (at is not None and declared_at > at):
            raise errors.class_hash_not_found()
        sierra = self.store.sierra_class(class_hash)
        assert sierra is not None
        abi = sierra.get("abi", [])
        return {
            "sierra_program": sierra["sierra_program"],
            "contract_class_version": sierra["contract_class_version"],
            "entry_points_by_type": sierra["entry_points_by_type"],
            "abi": abi if isinstance(abi, str) else json.dumps(abi),
        }

    def _vm_at(self, at: int | None) -> CairoVM:
        if at is None:
            return self.vm
        past: CurrentState = self.store.load_state_at(at)
        live = self.vm.state
        state = ChainState(
            storage=past.storage,
            nonces=past.nonces,
            class_hashes=past.class_hashes,
            compiled_class_hashes=live.compiled_class_hashes,
            classes=live.classes,
        )
        block = self.store.block_by_number(at)
        assert block is not None
        return CairoVM(
            state,
            chain_id=self.chain_id,
            block=BlockContext(at, block.header["timestamp"], SEQUENCER_ADDRESS),
        )

    def estimate_message_fee(
        self,
        to_address: int,
        selector: int,
        from_address: int,
        payload: list[int],
        block_id: BlockId,
    ) -> dict[str, Any]:
        """``estimateMessageFee``: the L1 handler the message would trigger, executed (and
        discarded) in the VM. Keikochain has no L1, but the execution is real."""
        at = self._state_block(block_id)
        self._require_contract(to_address, at)
        vm = self._vm_at(at)
        if at is None:
            vm.block = self._block_context()
        try:
            result = vm.call(
                to_address,
                selector,
                [from_address, *payload],
                commit=False,
                entry_point_type="L1_HANDLER",
            )
        except CairoRevert as exc:
            raise errors.contract_error(exc.reason) from None
        diff_felts = 2 * sum(len(w) for w in result.storage_diff.values())
        usage = gas_usage(result.n_steps, len(payload) + 1, diff_felts)
        return {**usage.to_estimate(), "unit": "WEI"}

    def call(self, call: FunctionCall, block_id: BlockId) -> list[int]:
        at = self._state_block(block_id)
        self._require_contract(call.contract_address, at)
        vm = self._vm_at(at)
        if at is None:
            vm.block = self._block_context()
        try:
            return vm.view(call.contract_address, call.entry_point_selector, call.calldata)
        except CairoRevert as exc:
            if exc.code == "ENTRY_POINT_NOT_FOUND_IN_CONTRACT":
                raise errors.entrypoint_not_found() from None
            raise errors.contract_error(exc.reason) from None

    # ------------------------------------------------------------ transactions

    def _block_context(self) -> BlockContext:
        return BlockContext(
            number=self._latest.number + 1,
            timestamp=self._next_timestamp(),
            sequencer_address=SEQUENCER_ADDRESS,
        )

    def _prepare(self, tx: BroadcastedTx) -> int:
        """The transaction hash (a DECLARE's needs its class hash, computed here)."""
        if isinstance(tx, DeclareV3Request) and not tx.class_hash:
            object.__setattr__(tx, "class_hash", sierra_class_hash(tx.sierra_text()))
        return tx.compute_hash(self.chain_id)

    def add_transaction(self, tx: BroadcastedTx) -> int:
        """Validate, execute and mine ``tx`` into its own block; its hash."""
        if tx.is_query:
            raise errors.unsupported_tx_version(
                "query versions (2**128 + 3) are for estimation and simulation only"
            )
        # A replay fails the nonce check (the hash covers the sender and the nonce).
        tx_hash = self._prepare(tx)
        self.vm.block = self._block_context()
        self.executor.reads = reads = InitialReads()
        try:
            run = self.executor.run(tx, tx_hash, RunFlags())
        finally:
            self.executor.reads = None
        try:
            self._mine(run, reads)
        except Exception:
            run.journal.rollback()
            raise
        return tx_hash

    def _latest_only(self, block_id: BlockId, what: str) -> None:
        if block_id.tag is None and self.resolve_block(block_id).number != self._latest.number:
            raise errors.unexpected_error(f"{what} runs on the latest block only")

    def _run_sequence(
        self,
        txs: list[BroadcastedTx],
        flags: RunFlags,
        *,
        revert_is_error: bool,
        reads: InitialReads | None = None,
    ) -> list[Execution]:
        """Execute ``txs`` in order on the live state, then restore it."""
        self.vm.block = self._block_context()
        runs: list[Execution] = []
        self.executor.reads = reads
        try:
            for index, tx in enumerate(txs):
                try:
                    run = self.executor.run(tx, self._prepare(tx), flags)
                except errors.RpcError as err:
                    detail = (
                        f"{err.message}: {err.data}" if isinstance(err.data, str) else err.message
                    )
                    raise errors.transaction_execution_error(index, detail) from None
                runs.append(run)
                if revert_is_error and run.revert_reason is not None:
                    raise errors.transaction_execution_error(index, run.revert_reason)
            # Traces read the journals: build them before the state is restored.
            self._traced = [trace_json(r) for r in runs]
        finally:
            self.executor.reads = None
            for run in reversed(runs):
                run.journal.rollback()
        return runs

    def estimate_fee(
        self, txs: list[BroadcastedTx], *, skip_validate: bool, block_id: BlockId
    ) -> list[dict[str, Any]]:
        """Each transaction's fee, executed in sequence on top of the live state (the state
        is always restored). A revert is an error here, as the spec requires."""
        self._latest_only(block_id, "fee estimation")
        flags = RunFlags(validate=not skip_validate, charge_fee=False, check_bounds=False)
        runs = self._run_sequence(txs, flags, revert_is_error=True)
        return [run.usage.to_estimate() for run in runs]

    def simulate(
        self,
        txs: list[BroadcastedTx],
        *,
        skip_validate: bool,
        skip_fee_charge: bool,
        block_id: BlockId,
        initial_reads: bool = False,
    ) -> Any:
        """``simulateTransactions``: traces and fees; a revert is shown in its trace. With
        ``initial_reads``, also the state values the simulation read first."""
        self._latest_only(block_id, "simulation")
        flags = RunFlags(
            validate=not skip_validate,
            charge_fee=not skip_fee_charge,
            check_bounds=not skip_fee_charge,
        )
        reads = InitialReads() if initial_reads else None
        runs = self._run_sequence(txs, flags, revert_is_error=False, reads=reads)
        simulated = [
            {"transaction_trace": trace, "fee_estimation": run.usage.to_estimate()}
            for run, trace in zip(runs, self._traced, strict=True)
        ]
        if reads is None:
            return simulated
        return {"simulated_transactions": simulated, "initial_reads": reads.to_json()}

    # ------------------------------------------------------------------ mining

    def _mine(self, run: Execution, reads: InitialReads) -> None:
        tx = run.tx
        parent = self._latest
        number = parent.number + 1
        timestamp = self.vm.block.timestamp
        diff = run.journal.diff()
        events = run.receipt_events
        status = "SUCCEEDED" if run.revert_reason is None else "REVERTED"
        receipt: dict[str, Any] = {
            "type": tx.type,
            "transaction_hash": hex(run.tx_hash),
            "actual_fee": {"amount": hex(run.fee), "unit": "FRI"},
            "execution_status": status,
            "finality_status": "ACCEPTED_ON_L2",
            "messages_sent": [],
            "events": [event_json(e) for e in events],
            "execution_resources": run.usage.to_resources(),
        }
        if isinstance(tx, DeployAccountV3Request):
            receipt["contract_address"] = hex(tx.contract_address)
        if run.revert_reason is not None:
            receipt["revert_reason"] = run.revert_reason
        header, block_hash = block_header(
            number, parent, timestamp, [run.tx_hash], [receipt], events, diff
        )
        trace = {**trace_json(run), INITIAL_READS_KEY: reads.to_json()}
        stored = StoredTx(run.tx_hash, 0, tx.to_rpc(run.tx_hash), receipt, trace)
        block = StoredBlock(number, block_hash, header, [run.tx_hash])
        self.store.commit_block(
            block,
            [stored],
            [(run.tx_hash, 0, i, e.from_address, e.keys, e.data) for i, e in enumerate(events)],
            diff,
        )
        self._latest = block
        log.info(
            "block %d %s %s %s%s",
            number,
            tx.type,
            hex(run.tx_hash),
            status,
            f" ({run.revert_reason})" if run.revert_reason else "",
        )
        for listener in list(self._listeners):
            listener(block, [stored])

    def add_listener(self, listener: BlockListener) -> None:
        """Called on the node's thread with each new block (the WebSocket API)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: BlockListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ---------------------------------------------------------------- devnet

    def increase_time(self, seconds: int) -> dict[str, Any]:
        """Move the chain clock forward (``devnet_increaseTime``); persisted."""
        self._time_offset += seconds
        self.store.set_meta("time_offset", str(self._time_offset))
        return {"timestamp_increased_by": seconds, "next_timestamp": self._next_timestamp()}

    def predeployed_json(self, with_balance: bool) -> list[dict[str, Any]]:
        """``devnet_getPredeployedAccounts``, as starknet-devnet answers it (development
        keys of a development chain: also printed at start and in accounts.json)."""
        out = []
        for account in self._predeployed:
            item: dict[str, Any] = {
                "initial_balance": str(INITIAL_BALANCE),
                "address": hex(account.address),
                "public_key": hex(account.public_key),
                "private_key": hex(account.private_key),
            }
            if with_balance:
                item["balance"] = {
                    "eth": {"amount": str(self.balance(account.address, "WEI")), "unit": "WEI"},
                    "strk": {"amount": str(self.balance(account.address, "FRI")), "unit": "FRI"},
                }
            out.append(item)
        return out

    def balance(self, address: int, unit: str) -> int:
        low, high = self.vm.view(TOKENS[unit], "balance_of", [address])[:2]
        return low + (high << 128)

    def mint(self, address: int, amount: int, unit: str) -> dict[str, Any]:
        """``devnet_mint``: a real INVOKE from the node's minting account calling the fee
        token's ``permissioned_mint``, mined like any other."""
        if self._minter is None:
            raise errors.unexpected_error("this chain has no minting account")
        if not 0 < amount <= MAX_MINT:
            raise errors.invalid_params(f"amount: must be between 1 and {MAX_MINT}")
        minter = self._minter
        call = Call(
            to_addr=TOKENS[unit],
            selector=get_selector_from_name("permissioned_mint"),
            calldata=[address, amount % 2**128, amount // 2**128],
        )
        unsigned = InvokeV3Request(
            sender_address=minter.address,
            calldata=execute_calldata([call]),
            signature=[],
            nonce=self.vm.get_nonce(minter.address),
            version=3,
            tip=0,
            resource_bounds=MINT_BOUNDS,
        )
        tx_hash = unsigned.compute_hash(self.chain_id)
        r, s = fast_message_signature(tx_hash, minter.private_key)
        tx = InvokeV3Request(**{**unsigned.__dict__, "signature": [r, s]})
        tx_hash = self.add_transaction(tx)
        receipt = self.receipt_json(tx_hash)
        if receipt["execution_status"] != "SUCCEEDED":
            raise errors.unexpected_error(f"mint reverted: {receipt.get('revert_reason')}")
        return {
            "new_balance": str(self.balance(address, unit)),
            "unit": unit,
            "tx_hash": hex(tx_hash),
        }


DATABASE_FILE = "chain.sqlite3"


def open_store(data_dir: Path) -> ChainStore:
    return ChainStore(data_dir / DATABASE_FILE)


__all__ = ["DevNode", "open_store"]
