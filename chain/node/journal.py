"""Undo log of the live chain state for one transaction (or one estimate/simulation).

Every phase of a transaction (validation, constructor, execution, fee transfer, a class
declaration) runs in the Cairo VM without committing; its writes go into the live
``ChainState`` through the journal, which remembers the previous values. ``diff()`` is
what the transaction changed; ``rollback()`` restores the state exactly.
"""

from __future__ import annotations

from chain.node.store import DeclaredClass, StateDiff
from chain.vm import CallResult, ChainState
from chain.vm import DeclaredClass as VmDeclaredClass

_MISSING = object()


class Journal:
    def __init__(self, state: ChainState) -> None:
        self._state = state
        self._storage: dict[tuple[int, int], int | None] = {}
        self._nonces: dict[int, int | None] = {}
        self._class_hashes: dict[int, int | None] = {}
        self._declared: list[DeclaredClass] = []

    def apply(self, result: CallResult) -> None:
        """The writes of one VM call (run with ``commit=False``)."""
        self.apply_storage(result.storage_diff)
        for address, class_hash in result.class_hash_writes.items():
            if address not in self._class_hashes:
                self._class_hashes[address] = self._state.class_hashes.get(address)
            self._state.class_hashes[address] = class_hash

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

    def declare(self, declared: DeclaredClass, sierra_text: str, casm_text: str) -> None:
        self._declared.append(declared)
        self._state.classes[declared.class_hash] = VmDeclaredClass(
            sierra=sierra_text, casm=casm_text
        )
        self._state.compiled_class_hashes[declared.class_hash] = declared.compiled_class_hash

    def diff(self) -> StateDiff:
        """What changed (only values that differ from before)."""
        out = StateDiff(declared=list(self._declared))
        for (address, key), old in self._storage.items():
            new = self._state.storage.get(address, {}).get(key, 0)
            if new != (old or 0):
                out.storage[(address, key)] = new
        for address, old_nonce in self._nonces.items():
            new_nonce = self._state.nonces.get(address, 0)
            if new_nonce != (old_nonce or 0):
                out.nonces[address] = new_nonce
        for address, old_class in self._class_hashes.items():
            new_class = self._state.class_hashes.get(address, 0)
            if new_class != (old_class or 0):
                out.class_hashes[address] = new_class
        return out

    def absorb(self, child: Journal) -> None:
        """Keep a nested journal's writes as this journal's (its undo values are the ones
        from before the child, unless this journal already holds older ones)."""
        for cell, old in child._storage.items():
            self._storage.setdefault(cell, old)
        for address, old_nonce in child._nonces.items():
            self._nonces.setdefault(address, old_nonce)
        for address, old_class in child._class_hashes.items():
            self._class_hashes.setdefault(address, old_class)
        self._declared += child._declared
        child._storage, child._nonces, child._class_hashes, child._declared = {}, {}, {}, []

    def rollback(self) -> None:
        for (address, key), old in self._storage.items():
            slots = self._state.storage.get(address, {})
            if old is None:
                slots.pop(key, None)
            else:
                slots[key] = old
        for mapping, undo in (
            (self._state.nonces, self._nonces),
            (self._state.class_hashes, self._class_hashes),
        ):
            for address, old_value in undo.items():
                if old_value is None:
                    mapping.pop(address, None)
                else:
                    mapping[address] = old_value
        for declared in self._declared:
            self._state.classes.pop(declared.class_hash, None)
            self._state.compiled_class_hashes.pop(declared.class_hash, None)
        self._storage.clear()
        self._nonces.clear()
        self._class_hashes.clear()
        self._declared.clear()
