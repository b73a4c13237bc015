"""Remembered view results for :class:`chain.vm.CairoVM`.

A view call is a pure function of what it reads: the storage cells, class hashes, nonces
and compiled class hashes it touched (cairo-lang records each first read in its state
cache), plus the block and transaction context when the call asked for it
(``get_execution_info``, ``get_block_hash``). An entry keeps the result with those reads;
it answers a later call with the same inputs only while every read value is still the one
in the chain state, so a write to any cell the view depended on makes it run again. No
block count or time decides anything: the reads do.

Checking an entry costs a dictionary lookup per read (a view reads a handful of cells),
against tens of milliseconds for running the pure-Python Cairo VM, which loads the
contract's whole program into VM memory for every call.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from chain.vm import CallResult, ChainState

# Syscalls whose answer depends on the block or the transaction, not on the state.
CONTEXT_SYSCALLS = frozenset(
    {
        "get_execution_info",
        "get_block_hash",
        "get_tx_info",
        "get_block_number",
        "get_block_timestamp",
    }
)
MAX_ENTRIES = 4096


class ViewKey(NamedTuple):
    contract_address: int
    selector: int
    calldata: tuple[int, ...]
    caller_address: int


@dataclass(frozen=True)
class StateReads:
    """The first value of every state cell a call read, as it was before the call."""

    storage: dict[tuple[int, int], int]
    class_hashes: dict[int, int]
    nonces: dict[int, int]
    compiled_class_hashes: dict[int, int]

    @classmethod
    def of(cls, cache: Any) -> StateReads:
        """From a cairo-lang ``StateCache`` (its private first-read dicts; 0.14.0.1)."""
        return cls(
            storage=dict(cache._storage_initial_values),
            class_hashes=dict(cache._class_hash_initial_values),
            nonces=dict(cache._nonce_initial_values),
            compiled_class_hashes=dict(cache._compiled_class_hash_initial_values),
        )

    def still_hold(self, state: ChainState) -> bool:
        storage = state.storage
        for (address, key), value in self.storage.items():
            if storage.get(address, {}).get(key, 0) != value:
                return False
        for address, class_hash in self.class_hashes.items():
            if state.class_hashes.get(address, 0) != class_hash:
                return False
        for address, nonce in self.nonces.items():
            if state.nonces.get(address, 0) != nonce:
                return False
        for class_hash, compiled in self.compiled_class_hashes.items():
            if state.compiled_class_hashes.get(class_hash, 0) != compiled:
                return False
        return True


@dataclass(frozen=True)
class _Entry:
    retdata: tuple[int, ...]
    reads: StateReads
    context: object | None  # the (block, tx) it saw, when it looked at them


class ViewCache:
    """Least-recently-used view results, each valid while its reads hold."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[ViewKey, _Entry] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def lookup(
        self, key: ViewKey, state: ChainState, context: object
    ) -> tuple[tuple[int, ...], StateReads] | None:
        """The remembered result and the reads it rests on, or None."""
        entry = self._entries.get(key)
        if (
            entry is None
            or (entry.context is not None and entry.context != context)
            or not entry.reads.still_hold(state)
        ):
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.retdata, entry.reads

    def store(self, key: ViewKey, result: CallResult, reads: StateReads, context: object) -> None:
        uses_context = any(name in CONTEXT_SYSCALLS for name in result.syscalls)
        self._entries[key] = _Entry(tuple(result.retdata), reads, context if uses_context else None)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
