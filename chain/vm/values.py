"""The VM's values: declared classes and their hashes, the block and transaction context a
call sees, a call's result (events, storage diff, the invocation tree) and the chain state
(`ChainState`, plain dicts the caller may persist as JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DeclaredClass:
    sierra: str  # contract class JSON as emitted by starknet-compile (ABI as a list)
    casm: str  # compiled class JSON


@dataclass(frozen=True)
class ClassHashes:
    class_hash: int
    compiled_class_hash: int


@dataclass(frozen=True)
class BlockContext:
    number: int = 0
    timestamp: int = 0
    sequencer_address: int = 0


@dataclass(frozen=True)
class TxContext:
    """What the running contract sees through ``get_tx_info``."""

    account_address: int = 0
    transaction_hash: int = 0
    signature: Sequence[int] = ()
    nonce: int = 0
    version: int = 3
    max_fee: int = 0


@dataclass(frozen=True)
class Event:
    from_address: int
    keys: list[int]
    data: list[int]


@dataclass(frozen=True)
class OrderedEvent:
    order: int
    keys: list[int]
    data: list[int]


@dataclass(frozen=True)
class Invocation:
    """One call of the execution tree, as a trace shows it (``FUNCTION_INVOCATION``)."""

    contract_address: int
    entry_point_selector: int
    calldata: list[int]
    caller_address: int
    class_hash: int
    entry_point_type: str  # EXTERNAL | CONSTRUCTOR | L1_HANDLER
    call_type: str  # CALL | LIBRARY_CALL
    result: list[int]
    calls: list[Invocation]
    events: list[OrderedEvent]
    n_steps: int  # the call tree rooted here
    failed: bool


@dataclass(frozen=True)
class CallResult:
    retdata: list[int]
    events: list[Event]
    storage_diff: dict[int, dict[int, int]]
    n_steps: int
    # Contracts deployed by the call (deploy syscall, constructor): address -> class hash.
    class_hash_writes: dict[int, int] = field(default_factory=dict)
    invocation: Invocation | None = None
    # Syscall name -> times used, over the whole call tree.
    syscalls: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    address: int
    result: CallResult


@dataclass
class ChainState:
    storage: dict[int, dict[int, int]] = field(default_factory=dict)
    nonces: dict[int, int] = field(default_factory=dict)
    class_hashes: dict[int, int] = field(default_factory=dict)
    compiled_class_hashes: dict[int, int] = field(default_factory=dict)
    classes: dict[int, DeclaredClass] = field(default_factory=dict)

    def copy(self) -> ChainState:
        """An independent copy (the class texts are immutable strings and are shared)."""
        return ChainState(
            storage={address: dict(kv) for address, kv in self.storage.items()},
            nonces=dict(self.nonces),
            class_hashes=dict(self.class_hashes),
            compiled_class_hashes=dict(self.compiled_class_hashes),
            classes=dict(self.classes),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "storage": {
                hex(a): {hex(k): hex(v) for k, v in kv.items()} for a, kv in self.storage.items()
            },
            "nonces": {hex(a): hex(n) for a, n in self.nonces.items()},
            "class_hashes": {hex(a): hex(c) for a, c in self.class_hashes.items()},
            "compiled_class_hashes": {
                hex(c): hex(cc) for c, cc in self.compiled_class_hashes.items()
            },
            "classes": {
                hex(c): {"sierra": d.sierra, "casm": d.casm} for c, d in self.classes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChainState:
        def ints(m: Mapping[str, str]) -> dict[int, int]:
            return {int(k, 16): int(v, 16) for k, v in m.items()}

        return cls(
            storage={int(a, 16): ints(kv) for a, kv in data["storage"].items()},
            nonces=ints(data["nonces"]),
            class_hashes=ints(data["class_hashes"]),
            compiled_class_hashes=ints(data["compiled_class_hashes"]),
            classes={
                int(c, 16): DeclaredClass(sierra=d["sierra"], casm=d["casm"])
                for c, d in data["classes"].items()
            },
        )
