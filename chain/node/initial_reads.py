"""``INITIAL_READS`` of the trace API: the state values a simulation (or a block's
re-execution) fetched before anything in it wrote them.

The Cairo VM reports, for each call, the first value it read of every cell (storage,
nonce, class hash, compiled class hash); the executor also reads nonces and balances
directly. A read counts as initial unless an earlier phase of the same sequence
(validation, execution, fee transfer, of this or an earlier transaction) wrote that cell.
"""

from __future__ import annotations

from typing import Any

from chain.vm import CallResult
from chain.vm_views import StateReads


class InitialReads:
    def __init__(self) -> None:
        self.storage: dict[tuple[int, int], int] = {}
        self.nonces: dict[int, int] = {}
        self.class_hashes: dict[int, int] = {}
        self.declared: dict[int, bool] = {}
        self._written: set[tuple[str, int, int]] = set()

    def read(self, reads: StateReads | None) -> None:
        if reads is None:
            return
        for (address, key), value in reads.storage.items():
            if ("s", address, key) not in self._written:
                self.storage.setdefault((address, key), value)
        for address, nonce in reads.nonces.items():
            self.read_nonce(address, nonce)
        for address, class_hash in reads.class_hashes.items():
            if ("c", address, 0) not in self._written:
                self.class_hashes.setdefault(address, class_hash)
        for class_hash, compiled in reads.compiled_class_hashes.items():
            if ("d", class_hash, 0) not in self._written:
                self.declared.setdefault(class_hash, compiled != 0)

    def read_nonce(self, address: int, nonce: int) -> None:
        if ("n", address, 0) not in self._written:
            self.nonces.setdefault(address, nonce)

    def wrote(self, result: CallResult) -> None:
        for address, writes in result.storage_diff.items():
            self._written.update(("s", address, key) for key in writes)
        self._written.update(("c", address, 0) for address in result.class_hash_writes)

    def wrote_nonce(self, address: int) -> None:
        self._written.add(("n", address, 0))

    def wrote_class(self, class_hash: int) -> None:
        self._written.add(("d", class_hash, 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "storage": [
                {"contract_address": hex(a), "key": hex(k), "value": hex(v)}
                for (a, k), v in sorted(self.storage.items())
            ],
            "nonces": [
                {"contract_address": hex(a), "nonce": hex(n)}
                for a, n in sorted(self.nonces.items())
            ],
            "class_hashes": [
                {"contract_address": hex(a), "class_hash": hex(c)}
                for a, c in sorted(self.class_hashes.items())
            ],
            "declared_contracts": [
                {"class_hash": hex(c), "is_declared": d} for c, d in sorted(self.declared.items())
            ],
        }
