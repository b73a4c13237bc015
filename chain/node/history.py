"""What the dev chain has recorded, read back: blocks, state updates, transactions,
receipts, traces and events (the read half of :class:`~chain.node.node.DevNode`, which
adds state, execution and mining on top of it).

Everything here reads the :class:`~chain.node.store.ChainStore` and the latest mined
block; nothing writes. ``pre_confirmed`` is always an empty block (instant mining).
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
from typing import Any, Literal

from chain.node import errors
from chain.node.blocks import filter_state_diff, keys_match, state_diff_json
from chain.node.codec import BlockId, EventFilter, hex_list
from chain.node.store import ChainStore, StateDiff, StoredBlock, StoredTx
from chain.vm import CairoVM

INITIAL_READS_KEY = "_initial_reads"  # stored with a transaction's trace, never served in it
MAX_EVENTS_CHUNK = 1024
MAX_EVENT_KEYS = 128

BlockView = Literal["hashes", "txs", "receipts"]


class ChainHistory:
    """Reads of mined blocks; :class:`~chain.node.node.DevNode` sets the store, the VM and
    the latest block, and builds the header of the block being built."""

    store: ChainStore
    vm: CairoVM
    _latest: StoredBlock

    def _pending_header(self) -> dict[str, Any]:
        raise NotImplementedError  # the node's clock and prices: DevNode

    # ----------------------------------------------------------------- blocks

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

    def state_update_json(
        self, block_id: BlockId, contract_addresses: set[int] | None = None
    ) -> dict[str, Any]:
        if block_id.tag == "pre_confirmed":
            # Instant mining: nothing is pending.
            return {
                "old_root": self._latest.header["new_root"],
                "state_diff": state_diff_json(StateDiff()),
            }
        block = self.resolve_block(block_id)
        diff = block.header["_state_diff"]
        if contract_addresses is not None:
            diff = filter_state_diff(diff, contract_addresses)
        return {
            "block_hash": hex(block.hash),
            "new_root": block.header["new_root"],
            "old_root": block.header["_old_root"],
            "state_diff": diff,
        }

    # ----------------------------------------------------------------- traces

    def _stored_trace(self, tx_hash: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        self._stored_tx(tx_hash)
        trace = self.store.trace(tx_hash)
        if trace is None:
            raise errors.no_trace_available("REJECTED")
        reads = trace.pop(INITIAL_READS_KEY, None)
        return trace, reads

    def trace_json(self, tx_hash: int) -> dict[str, Any]:
        return self._stored_trace(tx_hash)[0]

    def block_traces_json(self, block_id: BlockId, initial_reads: bool = False) -> Any:
        """The traces of a block's transactions; with ``initial_reads``, also what the
        block read first (each block holds one transaction: its reads, as mined)."""
        blocks_txs: list[int] = []
        if block_id.tag != "pre_confirmed":  # instant mining: the block being built is empty
            blocks_txs = self.resolve_block(block_id).tx_hashes
        traces, reads = [], None
        for tx_hash in blocks_txs:
            trace, tx_reads = self._stored_trace(tx_hash)
            traces.append({"transaction_hash": hex(tx_hash), "trace_root": trace})
            reads = reads or tx_reads
        if not initial_reads:
            return traces
        # Blocks mined before initial reads were recorded have none: an empty object, as
        # the spec answers when it cannot give them.
        return {"traces": traces, "initial_reads": reads or {}}

    def compiled_casm_json(self, class_hash: int) -> dict[str, Any]:
        declared = self.vm.state.classes.get(class_hash)
        if declared is None:
            raise errors.class_hash_not_found()
        casm = json.loads(declared.casm)
        body = {
            key: casm[key]
            for key in ("prime", "compiler_version", "bytecode", "hints", "entry_points_by_type")
        }
        if "bytecode_segment_lengths" in casm:
            body["bytecode_segment_lengths"] = casm["bytecode_segment_lengths"]
        return body

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
                if not keys_match(flt.keys, event.keys):
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
