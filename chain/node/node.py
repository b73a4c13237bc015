"""The dev chain itself: state, v3 INVOKE execution, blocks, receipts and events.

``DevNode`` is single-threaded by design: the HTTP server calls it from one worker
thread only, the order in which transactions arrive is the order in which they are
executed, and each transaction is mined into its own block (instant mining).

A v3 INVOKE goes through the same steps as on Starknet:

1. the transaction hash is computed from the broadcasted fields (starknet-py's v3 hash);
2. the nonce must equal the account's nonce (stale or future nonces are rejected:
   there is no mempool);
3. the resource bounds' prices must cover the chain's gas prices;
4. the account's ``__validate__`` runs in the Cairo VM with that hash, the signature and
   the nonce in ``get_tx_info`` (caller 0, validate mode) and must return ``'VALID'``;
   a panic or another answer rejects the transaction (``VALIDATION_FAILURE``);
5. the nonce is bumped, then ``__execute__`` runs; a panic there (or gas above the
   bounds) gives a REVERTED receipt with the decoded reason, its writes are dropped and
   the nonce stays bumped;
6. the block (header, transaction, receipt, events, state diff) is written to SQLite in
   one transaction; if that fails, the in-memory state is rolled back too.

Rejected transactions are never included and leave no trace.
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from poseidon_py.poseidon_hash import poseidon_hash_many

from chain.node import errors
from chain.node.codec import (
    BlockId,
    EventFilter,
    FunctionCall,
    InvokeV3Request,
    hex_list,
)
from chain.node.fees import (
    GasUsage,
    amount_shortfall,
    block_prices,
    gas_usage,
    price_shortfall,
)
from chain.node.store import (
    CLASS_HASH,
    NONCE,
    STORAGE,
    ChainStore,
    CurrentState,
    DeclaredClass,
    StateDiff,
    StoredBlock,
    StoredTx,
)
from chain.vm import (
    BlockContext,
    CairoRevert,
    CairoVM,
    CallResult,
    ChainState,
    Event,
    TxContext,
)
from chain.vm import DeclaredClass as VmDeclaredClass

log = logging.getLogger("keikochain.node")

STARKNET_VERSION = "0.14.0"
SEQUENCER_ADDRESS = int.from_bytes(b"KEIKO_SEQUENCER", "big")
VALIDATED = int.from_bytes(b"VALID", "big")
MAX_EVENTS_CHUNK = 1024
MAX_EVENT_KEYS = 128
BLOCK_HASH_TAG = int.from_bytes(b"KEIKO_BLOCK_V0", "big")

BlockView = Literal["hashes", "txs", "receipts"]


# --------------------------------------------------------------------------- helpers


class _Journal:
    """Undo log of the live ``ChainState`` for one transaction (or one estimate)."""

    def __init__(self, state: ChainState) -> None:
        self._state = state
        self._storage: dict[tuple[int, int], int | None] = {}
        self._nonces: dict[int, int | None] = {}

    def apply_storage(self, diff: dict[int, dict[int, int]]) -> None:
        for address, writes in diff.items():
            slots = self._state.storage.setdefault(address, {})
            for key, value in writes.items():
                if (address, key) not in self._storage:
                    self._storage[(address, key)] = slots.get(key)
                slots[key] = value

    def set_nonce(self, address: int, nonce: int) -> None:
        if address not in self._nonces:
            self._nonces[address] = self._state.nonces.get(address)
        self._state.nonces[address] = nonce

    def diff(self) -> StateDiff:
        """What changed (only values that differ from before)."""
        out = StateDiff()
        for (address, key), old in self._storage.items():
            new = self._state.storage.get(address, {}).get(key, 0)
            if new != (old or 0):
                out.storage[(address, key)] = new
        for address, old_nonce in self._nonces.items():
            new_nonce = self._state.nonces.get(address, 0)
            if new_nonce != (old_nonce or 0):
                out.nonces[address] = new_nonce
        return out

    def rollback(self) -> None:
        for (address, key), old in self._storage.items():
            slots = self._state.storage.get(address, {})
            if old is None:
                slots.pop(key, None)
            else:
                slots[key] = old
        for address, old_nonce in self._nonces.items():
            if old_nonce is None:
                self._state.nonces.pop(address, None)
            else:
                self._state.nonces[address] = old_nonce
        self._storage.clear()
        self._nonces.clear()


@dataclass
class _Execution:
    """The outcome of running one INVOKE against the live state (not yet persisted)."""

    tx_hash: int
    journal: _Journal
    events: list[Event] = field(default_factory=list)
    usage: GasUsage = field(default_factory=lambda: GasUsage(0, 0, 0))
    revert_reason: str | None = None


def _felts(values: list[int]) -> int:
    return poseidon_hash_many(values) if values else 0


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "from_address": hex(event.from_address),
        "keys": hex_list(event.keys),
        "data": hex_list(event.data),
    }


# ------------------------------------------------------------------------------ node


class DevNode:
    """One Keikochain dev chain over a :class:`ChainStore` and a :class:`CairoVM`."""

    def __init__(
        self,
        store: ChainStore,
        vm: CairoVM,
        *,
        chain_id: int,
        predeployed: list[int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vm = vm
        self.chain_id = chain_id
        self._predeployed = list(predeployed or [])
        self._clock = clock
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

    def resolve_block(self, block_id: BlockId) -> StoredBlock:
        """A mined block (``pre_confirmed`` resolves to the latest one)."""
        if block_id.tag is not None:
            return self._latest
        if block_id.number is not None:
            block = self.store.block_by_number(block_id.number)
        else:
            assert block_id.hash is not None
            block = self.store.block_by_hash(block_id.hash)
        if block is None:
            raise errors.block_not_found()
        return block

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

    def block_json(self, block_id: BlockId, view: BlockView) -> dict[str, Any]:
        if block_id.tag == "pre_confirmed":
            # Instant mining: the block being built is always empty.
            return {**self._pending_header(), "transactions": []}
        block = self.resolve_block(block_id)
        body: dict[str, Any] = {k: v for k, v in block.header.items() if not k.startswith("_")}
        body["status"] = "ACCEPTED_ON_L2"
        if view == "hashes":
            body["transactions"] = [hex(h) for h in block.tx_hashes]
        else:
            txs = self.store.block_txs(block.number)
            if view == "txs":
                body["transactions"] = [t.tx for t in txs]
            else:
                body["transactions"] = [{"transaction": t.tx, "receipt": t.receipt} for t in txs]
        return body

    def state_update_json(self, block_id: BlockId) -> dict[str, Any]:
        if block_id.tag == "pre_confirmed":
            # Instant mining: nothing is pending.
            return {
                "old_root": self._latest.header["new_root"],
                "state_diff": _state_diff_json(StateDiff()),
            }
        block = self.resolve_block(block_id)
        return {
            "block_hash": hex(block.hash),
            "new_root": block.header["new_root"],
            "old_root": block.header["_old_root"],
            "state_diff": block.header["_state_diff"],
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

    def _execute(
        self, tx: InvokeV3Request, tx_hash: int, *, validate: bool, check_bounds: bool
    ) -> _Execution:
        """Run ``tx`` against the live state. Raises RpcError when it must be rejected
        (nothing changed then); otherwise the caller commits or rolls back the journal."""
        sender = tx.sender_address
        if sender not in self.vm.state.class_hashes:
            raise errors.validation_failure(f"account {hex(sender)} is not deployed")
        expected = self.vm.get_nonce(sender)
        if tx.nonce != expected:
            raise errors.invalid_transaction_nonce(
                f"account {hex(sender)}: expected nonce {expected}, got {tx.nonce}"
            )
        if check_bounds and (shortfall := price_shortfall(tx.resource_bounds)):
            raise errors.insufficient_resources(shortfall)
        self.vm.block = self._block_context()
        context = TxContext(
            account_address=sender,
            transaction_hash=tx_hash,
            signature=tuple(tx.signature),
            nonce=tx.nonce,
            version=tx.version,
        )
        journal = _Journal(self.vm.state)
        try:
            return self._run(tx, context, journal, expected, validate, check_bounds)
        except BaseException:
            journal.rollback()  # rejected (or an internal failure): leave no trace
            raise

    def _run(
        self,
        tx: InvokeV3Request,
        context: TxContext,
        journal: _Journal,
        expected_nonce: int,
        validate: bool,
        check_bounds: bool,
    ) -> _Execution:
        sender = tx.sender_address
        run = _Execution(tx_hash=context.transaction_hash, journal=journal)
        tx_felts = len(tx.calldata) + len(tx.signature)
        steps = 0
        if validate:
            try:
                validated = self.vm.call(
                    sender, "__validate__", tx.calldata, tx=context, validate=True, commit=False
                )
            except CairoRevert as exc:
                raise errors.validation_failure(exc.reason) from None
            if validated.retdata != [VALIDATED]:
                raise errors.validation_failure(
                    f"__validate__ returned {hex_list(validated.retdata)}, expected 'VALID'"
                )
            steps += validated.n_steps
            journal.apply_storage(validated.storage_diff)
            if check_bounds:
                usage = gas_usage(steps, tx_felts, 2 + 2 * _n_writes(validated.storage_diff))
                if shortfall_v := amount_shortfall(tx.resource_bounds, usage):
                    raise errors.insufficient_resources(f"__validate__: {shortfall_v}")
        journal.set_nonce(sender, expected_nonce + 1)
        before_execute = journal.diff()
        try:
            executed = self.vm.call(sender, "__execute__", tx.calldata, tx=context, commit=False)
        except CairoRevert as exc:
            run.revert_reason = exc.reason
        else:
            written = len(before_execute) + _n_new_writes(before_execute, executed)
            usage = gas_usage(steps + executed.n_steps, tx_felts, 2 * written)
            shortfall_e = amount_shortfall(tx.resource_bounds, usage) if check_bounds else None
            if shortfall_e is None:
                journal.apply_storage(executed.storage_diff)
                run.events = executed.events
                run.usage = usage
                return run
            run.revert_reason = shortfall_e
        # Reverted: the execute writes are dropped; validation and the nonce bump stay.
        run.usage = gas_usage(steps, tx_felts, 2 * len(before_execute))
        return run

    def estimate_fee(
        self, txs: list[InvokeV3Request], *, skip_validate: bool, block_id: BlockId
    ) -> list[dict[str, Any]]:
        """Each transaction's fee, executed in sequence on top of the live state; the
        state is always restored. A revert is an error here, as the spec requires."""
        if block_id.tag is None and self.resolve_block(block_id).number != self._latest.number:
            raise errors.unexpected_error("fee estimation runs on the latest block only")
        journals: list[_Journal] = []
        estimates = []
        try:
            for index, tx in enumerate(txs):
                tx_hash = tx.compute_hash(self.chain_id)
                try:
                    run = self._execute(tx, tx_hash, validate=not skip_validate, check_bounds=False)
                except errors.RpcError as err:
                    detail = err.data if isinstance(err.data, str) else err.message
                    raise errors.transaction_execution_error(index, detail) from None
                journals.append(run.journal)
                if run.revert_reason is not None:
                    raise errors.transaction_execution_error(index, run.revert_reason)
                estimates.append(run.usage.to_estimate())
        finally:
            for journal in reversed(journals):
                journal.rollback()
        return estimates

    def add_invoke(self, tx: InvokeV3Request) -> int:
        # No duplicate check is needed: the hash covers sender and nonce, and a nonce is
        # accepted once.
        tx_hash = tx.compute_hash(self.chain_id)
        run = self._execute(tx, tx_hash, validate=True, check_bounds=True)
        try:
            self._mine(tx, run)
        except Exception:
            run.journal.rollback()
            raise
        return tx_hash

    # ------------------------------------------------------------------ mining

    def _mine(self, tx: InvokeV3Request, run: _Execution) -> None:
        parent = self._latest
        number = parent.number + 1
        timestamp = self.vm.block.timestamp
        diff = run.journal.diff()
        status = "SUCCEEDED" if run.revert_reason is None else "REVERTED"
        receipt: dict[str, Any] = {
            "type": "INVOKE",
            "transaction_hash": hex(run.tx_hash),
            "actual_fee": {"amount": hex(run.usage.fee_fri), "unit": "FRI"},
            "execution_status": status,
            "finality_status": "ACCEPTED_ON_L2",
            "messages_sent": [],
            "events": [_event_json(e) for e in run.events],
            "execution_resources": run.usage.to_resources(),
        }
        if run.revert_reason is not None:
            receipt["revert_reason"] = run.revert_reason
        header, block_hash = block_header(
            number, parent, timestamp, [run.tx_hash], [receipt], run.events, diff
        )
        self.store.commit_block(
            StoredBlock(number, block_hash, header, [run.tx_hash]),
            [StoredTx(run.tx_hash, 0, tx.to_rpc(run.tx_hash), receipt)],
            [(run.tx_hash, 0, i, e.from_address, e.keys, e.data) for i, e in enumerate(run.events)],
            diff,
        )
        self._latest = StoredBlock(number, block_hash, header, [run.tx_hash])
        log.info(
            "block %d tx %s %s%s",
            number,
            hex(run.tx_hash),
            status,
            f" ({run.revert_reason})" if run.revert_reason else "",
        )

    # --------------------------------------------------------- tx / receipt reads

    def _stored_tx(self, tx_hash: int) -> tuple[StoredBlock, StoredTx]:
        found = self.store.tx(tx_hash)
        if found is None:
            raise errors.txn_hash_not_found()
        number, stored = found
        block = self.store.block_by_number(number)
        assert block is not None
        return block, stored

    def transaction_json(self, tx_hash: int) -> dict[str, Any]:
        return self._stored_tx(tx_hash)[1].tx

    def transaction_by_index_json(self, block_id: BlockId, index: int) -> dict[str, Any]:
        if block_id.tag == "pre_confirmed":
            raise errors.invalid_txn_index()
        block = self.resolve_block(block_id)
        txs = self.store.block_txs(block.number)
        if index >= len(txs):
            raise errors.invalid_txn_index()
        return txs[index].tx

    def receipt_json(self, tx_hash: int) -> dict[str, Any]:
        block, stored = self._stored_tx(tx_hash)
        return {**stored.receipt, "block_hash": hex(block.hash), "block_number": block.number}

    def status_json(self, tx_hash: int) -> dict[str, Any]:
        _, stored = self._stored_tx(tx_hash)
        body = {
            "finality_status": stored.receipt["finality_status"],
            "execution_status": stored.receipt["execution_status"],
        }
        if "revert_reason" in stored.receipt:
            body["failure_reason"] = stored.receipt["revert_reason"]
        return body

    # ----------------------------------------------------------------- events

    def _event_range_bound(self, block_id: BlockId | None, default: int) -> int:
        if block_id is None:
            return default
        if block_id.tag == "pre_confirmed":
            return self._latest.number + 1
        return self.resolve_block(block_id).number

    def events_json(self, flt: EventFilter) -> dict[str, Any]:
        if flt.chunk_size > MAX_EVENTS_CHUNK:
            raise errors.page_size_too_big(MAX_EVENTS_CHUNK)
        if sum(len(k) for k in flt.keys) > MAX_EVENT_KEYS:
            raise errors.too_many_keys_in_filter(MAX_EVENT_KEYS)
        start_id = 0
        if flt.continuation_token is not None:
            token = flt.continuation_token
            if not token.isdigit() or int(token) <= 0:
                raise errors.invalid_continuation_token()
            start_id = int(token)
        first = self._event_range_bound(flt.from_block, 0)
        last = self._event_range_bound(flt.to_block, self._latest.number + 1)
        out: list[dict[str, Any]] = []
        token_out: str | None = None
        hashes: dict[int, int] = {}
        if first <= last:
            for event in self.store.iter_events(first, last, start_id, flt.addresses):
                if not _keys_match(flt.keys, event.keys):
                    continue
                if len(out) == flt.chunk_size:
                    token_out = str(event.id)
                    break
                if event.block_number not in hashes:
                    block = self.store.block_by_number(event.block_number)
                    assert block is not None
                    hashes[event.block_number] = block.hash
                out.append(
                    {
                        "from_address": hex(event.from_address),
                        "keys": hex_list(event.keys),
                        "data": hex_list(event.data),
                        "block_hash": hex(hashes[event.block_number]),
                        "block_number": event.block_number,
                        "transaction_hash": hex(event.tx_hash),
                        "transaction_index": event.tx_index,
                        "event_index": event.event_index,
                    }
                )
        body: dict[str, Any] = {"events": out}
        if token_out is not None:
            body["continuation_token"] = token_out
        return body

    # ---------------------------------------------------------------- devnet

    def increase_time(self, seconds: int) -> dict[str, Any]:
        """Move the chain clock forward (``devnet_increaseTime``); persisted."""
        self._time_offset += seconds
        self.store.set_meta("time_offset", str(self._time_offset))
        return {"timestamp_increased_by": seconds, "next_timestamp": self._next_timestamp()}

    def predeployed_addresses(self) -> list[int]:
        return list(self._predeployed)


def block_header(
    number: int,
    parent: StoredBlock | None,
    timestamp: int,
    tx_hashes: list[int],
    receipts: list[dict[str, Any]],
    events: list[Event],
    diff: StateDiff,
) -> tuple[dict[str, Any], int]:
    """Header fields and block hash. Commitments are Poseidon hashes over the block's
    contents and ``new_root`` chains the state-diff commitments: Keikochain's own
    scheme (there is no Patricia trie), deterministic and tamper-evident."""
    old_root = int(parent.header["new_root"], 16) if parent else 0
    state_diff_json = _state_diff_json(diff)
    state_diff_commitment = _felts(
        [
            *(x for (a, k), v in sorted(diff.storage.items()) for x in (a, k, v)),
            *(x for a, n in sorted(diff.nonces.items()) for x in (a, n)),
            *(x for a, c in sorted(diff.class_hashes.items()) for x in (a, c)),
            *(c.class_hash for c in diff.declared),
        ]
    )
    new_root = poseidon_hash_many([old_root, state_diff_commitment])
    event_commitment = _felts(
        [poseidon_hash_many([e.from_address, _felts(e.keys), _felts(e.data)]) for e in events]
    )
    receipt_commitment = _felts(
        [
            poseidon_hash_many(
                [
                    int(r["transaction_hash"], 16),
                    int(r["actual_fee"]["amount"], 16),
                    0 if r["execution_status"] == "SUCCEEDED" else 1,
                ]
            )
            for r in receipts
        ]
    )
    transaction_commitment = _felts(tx_hashes)
    parent_hash = parent.hash if parent else 0
    block_hash = poseidon_hash_many(
        [
            BLOCK_HASH_TAG,
            number,
            new_root,
            SEQUENCER_ADDRESS,
            timestamp,
            len(tx_hashes),
            transaction_commitment,
            len(events),
            event_commitment,
            receipt_commitment,
            state_diff_commitment,
            parent_hash,
        ]
    )
    header = {
        "block_hash": hex(block_hash),
        "parent_hash": hex(parent_hash),
        "block_number": number,
        "new_root": hex(new_root),
        "timestamp": timestamp,
        "sequencer_address": hex(SEQUENCER_ADDRESS),
        **block_prices(),
        "l1_da_mode": "BLOB",
        "starknet_version": STARKNET_VERSION,
        "event_commitment": hex(event_commitment),
        "transaction_commitment": hex(transaction_commitment),
        "receipt_commitment": hex(receipt_commitment),
        "state_diff_commitment": hex(state_diff_commitment),
        "event_count": len(events),
        "transaction_count": len(tx_hashes),
        "state_diff_length": len(diff),
        "_old_root": hex(old_root),
        "_state_diff": state_diff_json,
    }
    return header, block_hash


def commit_genesis(store: ChainStore, diff: StateDiff, timestamp: int) -> StoredBlock:
    """Write block 0 holding the genesis state (no transactions)."""
    header, block_hash = block_header(0, None, timestamp, [], [], [], diff)
    block = StoredBlock(0, block_hash, header, [])
    store.commit_block(block, [], [], diff)
    return block


def _n_writes(diff: dict[int, dict[int, int]]) -> int:
    return sum(len(w) for w in diff.values())


def _n_new_writes(before: StateDiff, executed: CallResult) -> int:
    return sum(
        1
        for a, writes in executed.storage_diff.items()
        for k in writes
        if (a, k) not in before.storage
    )


def _keys_match(flt: list[list[int]], keys: list[int]) -> bool:
    for position, allowed in enumerate(flt):
        if not allowed:
            continue
        if position >= len(keys) or keys[position] not in allowed:
            return False
    return True


def _state_diff_json(diff: StateDiff) -> dict[str, Any]:
    by_address: dict[int, list[dict[str, str]]] = {}
    for (address, key), value in sorted(diff.storage.items()):
        by_address.setdefault(address, []).append({"key": hex(key), "value": hex(value)})
    return {
        "storage_diffs": [
            {"address": hex(a), "storage_entries": entries} for a, entries in by_address.items()
        ],
        "deprecated_declared_classes": [],
        "declared_classes": [
            {"class_hash": hex(c.class_hash), "compiled_class_hash": hex(c.compiled_class_hash)}
            for c in diff.declared
        ],
        "deployed_contracts": [
            {"address": hex(a), "class_hash": hex(c)} for a, c in sorted(diff.class_hashes.items())
        ],
        "replaced_classes": [],
        "nonces": [
            {"contract_address": hex(a), "nonce": hex(n)} for a, n in sorted(diff.nonces.items())
        ],
    }


def open_store(data_dir: Path) -> ChainStore:
    return ChainStore(data_dir / "chain.sqlite3")


__all__ = ["DeclaredClass", "DevNode", "open_store"]
