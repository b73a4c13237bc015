"""Execute compiled Keikochain contracts in cairo-lang's Cairo VM.

The dev node and the contract tests share this small executor. It owns no files and
no threads: the chain state is a few plain dicts (``ChainState``) that the caller may
persist and restore as it likes, and every call is atomic (a failing call leaves the
state exactly as it was).

API
---
``ChainState``
    ``storage[address][key] -> value``, ``nonces[address]``,
    ``class_hashes[address] -> class hash`` (deployed contracts),
    ``compiled_class_hashes[class hash] -> compiled class hash`` (declared classes),
    ``classes[class hash] -> DeclaredClass(sierra, casm)`` (JSON texts).
    ``to_json()`` / ``ChainState.from_json()`` give a JSON-safe dict (hex strings);
    ``copy()`` an independent copy.

``CairoVM(state=None, *, chain_id=DEFAULT_CHAIN_ID, block=None)``
    ``vm.block``: ``BlockContext(number, timestamp, sequencer_address)``, read by
    contracts through ``get_block_info``; set it before executing a block's txs.

    ``declare(sierra, casm) -> ClassHashes``: sierra/casm as JSON text or dict, as in
        ``contracts/build/``; returns (class_hash, compiled_class_hash).
    ``declare_build(name, build_dir=BUILD_DIR) -> ClassHashes``.
    ``deploy(class_hash, calldata=(), *, salt=0, deployer_address=0) -> Deployment``:
        runs the constructor (caller = deployer; a class without constructor takes no
        calldata and is just placed) and returns the address (computed as Starknet
        does, so it equals starknet-py's ``compute_address``) and the result.
    ``call(address, entry_point, calldata=(), *, caller_address=0, tx=None,
        validate=False, commit=True) -> CallResult``: ``entry_point`` is a name or a
        selector; ``tx`` (``TxContext``) is what ``get_tx_info`` shows: account address,
        transaction hash, signature, nonce, version (default 3). ``validate=True`` runs
        under Starknet's validate-mode restrictions (for ``__validate__``).
        ``commit=False`` runs and discards the writes (views, fee estimation).
    ``view(address, entry_point, calldata=(), ...) -> list[int]``: ``call`` with
        ``commit=False``, returning the retdata.
    ``fork() -> CairoVM``: an independent VM over a copy of the state.
    ``get_storage_at``, ``get_nonce``, ``get_class_hash_at``, ``increment_nonce``:
        plain reads and the node's nonce bump (the VM does not manage nonces, because a
        v3 invoke is assembled by the node from ``__validate__`` and ``__execute__``).

``CallResult``: ``retdata``, ``events`` (``Event(from_address, keys, data)`` in
    emission order, nested calls included), ``storage_diff`` (address -> key -> new
    value, only the values that changed), ``n_steps``.

``CairoRevert``: raised for any failed execution. ``reason`` is the decoded Cairo panic
    (felts that are short strings become text: ``'empty root'``), ``panic_data`` the raw
    felts, ``code`` the Starknet error code name (``TRANSACTION_FAILED``,
    ``UNINITIALIZED_CONTRACT``, ``ENTRY_POINT_NOT_FOUND_IN_CONTRACT``...). Also raised,
    with code ``OUT_OF_RANGE_FELT``, for calldata or signature values that are not felts
    (cairo-lang would silently reduce them modulo P).

Importing this module installs ``chain.fast_ecdsa`` (faster, proven-equal ``ec_op``
builtin and square-root hint) into cairo-lang; ``fast_ecdsa.uninstall()`` reverts it.

Performance note for long-running processes: every call allocates hundreds of thousands
of short-lived VM objects, and the cyclic garbage collector's full passes then walk all
long-lived ones (parsed classes, the state). Calling ``gc.collect(); gc.freeze()`` once
the genesis/restored state is loaded cut the CPU time of a signed invoke by ~20% here.

Example::

    vm = CairoVM()
    anchor = vm.declare_build("interaction_anchor").class_hash
    addr = vm.deploy(anchor, [admin]).address
    vm.call(addr, "add_operator", [op], caller_address=admin)
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starknet_py.common import create_casm_class, create_sierra_compiled_contract
from starknet_py.hash.casm_class_hash import compute_casm_class_hash
from starknet_py.hash.hash_method import HashMethod
from starknet_py.hash.sierra_class_hash import compute_sierra_class_hash
from starkware.cairo.lang.vm.memory_dict import MemoryDict
from starkware.cairo.lang.vm.memory_segments import MemorySegmentManager
from starkware.cairo.lang.vm.relocatable import RelocatableValue
from starkware.cairo.lang.vm.virtual_machine_base import VirtualMachineBase
from starkware.crypto.signature.signature import FIELD_PRIME
from starkware.starknet.business_logic.execution.deprecated_objects import (
    ExecutionResourcesManager,
)
from starkware.starknet.business_logic.execution.execute_entry_point import ExecuteEntryPoint
from starkware.starknet.business_logic.execution.objects import (
    CallInfo,
    CallType,
    TransactionExecutionContext,
)
from starkware.starknet.business_logic.state.state import CachedSyncState
from starkware.starknet.business_logic.state.state_api import (
    SyncStateReader,
    get_stark_exception_on_undeclared_contract,
)
from starkware.starknet.business_logic.state.state_api_objects import BlockInfo
from starkware.starknet.core.os.contract_address.contract_address import (
    calculate_contract_address_from_hash,
)
from starkware.starknet.definitions.constants import VERSIONED_CONSTANTS, GasCost
from starkware.starknet.definitions.data_availability_mode import DataAvailabilityMode
from starkware.starknet.definitions.execution_mode import ExecutionMode
from starkware.starknet.definitions.general_config import StarknetGeneralConfig
from starkware.starknet.public.abi import CONSTRUCTOR_ENTRY_POINT_SELECTOR, get_selector_from_name
from starkware.starknet.services.api.contract_class.contract_class import (
    CompiledClass,
    CompiledClassBase,
    ContractClass,
    EntryPointType,
)
from starkware.starkware_utils.error_handling import StarkException

from chain import fast_ecdsa
from chain.class_cache import digest, memoized
from chain.vm_views import StateReads, ViewCache, ViewKey

__all__ = [
    "BUILD_DIR",
    "DEFAULT_CHAIN_ID",
    "BlockContext",
    "CairoRevert",
    "CairoVM",
    "CallResult",
    "ChainState",
    "ClassHashes",
    "DeclaredClass",
    "Deployment",
    "Event",
    "Invocation",
    "OrderedEvent",
    "TxContext",
    "class_hashes",
    "compiled_class_hash",
    "decode_panic",
    "selector",
    "sierra_class_hash",
]

BUILD_DIR = Path(__file__).resolve().parents[1] / "contracts" / "build"
DEFAULT_CHAIN_ID = int.from_bytes(b"KEIKOCHAIN_DEV", "big")
_L1 = DataAvailabilityMode.L1

# Same results, ~20x faster Stark ECDSA in __validate__ (see chain.fast_ecdsa).
fast_ecdsa.install()


def _memoize_hint_compilation() -> None:
    """cairo-lang compiles every Python hint of a program again for each call (~200
    ``compile`` calls for one contract). Code objects are immutable, so one compilation per
    (source, name) serves every later run; failures still go through cairo-lang's own
    error path."""
    original = VirtualMachineBase.compile_hint
    if getattr(original, "_keiko_memoized", False):
        return
    compiled: dict[tuple[str, str], Any] = {}

    def compile_hint(self: Any, source: str, filename: str, hint_index: int, pc: Any) -> Any:
        key = (source, filename)
        code = compiled.get(key)
        if code is None:
            code = original(self, source, filename, hint_index, pc)
            compiled[key] = code
        return code

    compile_hint._keiko_memoized = True  # type: ignore[attr-defined]
    VirtualMachineBase.compile_hint = compile_hint  # type: ignore[method-assign]


_memoize_hint_compilation()


_PROGRAM_CELLS_MIN = 256  # shorter writes (call arguments, stacks) take the usual path
_PROGRAM_CELLS_CACHE = 64  # programs remembered (their data lists stay alive with them)


def _fast_program_loading() -> None:
    """cairo-lang writes a program into a new runner's memory one checked cell at a time
    (a RelocatableValue, two type checks and a dict write per cell: tens of thousands per
    call for a contract, about a sixth of the node's CPU). A program's data list never
    changes and a runner always loads it at the start of a fresh segment, so the cells
    ({address: value}, checked once) are kept per (program data, segment, offset) and
    copied into the memory dict in one update. Anything unusual (a proxy memory, a target
    range already holding a cell) takes cairo-lang's own path."""
    original = MemorySegmentManager.load_data
    if getattr(original, "_keiko_fast", False):
        return
    cells: dict[tuple[int, int, int], tuple[Sequence[Any], dict[Any, Any]]] = {}

    def load_data(self: Any, ptr: Any, data: Sequence[Any]) -> Any:
        memory = self.memory
        if (
            len(data) < _PROGRAM_CELLS_MIN
            or not isinstance(ptr, RelocatableValue)
            or type(memory) is not MemoryDict
            or memory._frozen
            or not isinstance(data, list)
            or len(memory.data) > len(data)
        ):
            return original(self, ptr, data)
        key = (id(data), ptr.segment_index, ptr.offset)
        known = cells.get(key)
        if known is None or known[0] is not data:
            if not all(
                isinstance(v, RelocatableValue) or (isinstance(v, int) and v >= 0) for v in data
            ):
                return original(self, ptr, data)
            if len(cells) >= _PROGRAM_CELLS_CACHE:
                cells.clear()
            known = (data, {ptr + i: v for i, v in enumerate(data)})
            cells[key] = known
        end = ptr.offset + len(data)
        segment = ptr.segment_index
        for address in memory.data:
            if (
                isinstance(address, RelocatableValue)
                and address.segment_index == segment
                and ptr.offset <= address.offset < end
            ):
                return original(self, ptr, data)  # overlapping cells are checked one by one
        memory.data.update(known[1])
        return ptr + len(data)

    load_data._keiko_fast = True  # type: ignore[attr-defined]
    # cairo-lang's own, for scripts/bench/vm_calls.py
    load_data._keiko_original = original  # type: ignore[attr-defined]
    MemorySegmentManager.load_data = load_data  # type: ignore[method-assign]


_fast_program_loading()


# --------------------------------------------------------------------------- values


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


class CairoRevert(Exception):
    """A failed execution; the state is unchanged."""

    def __init__(self, reason: str, *, code: str, panic_data: list[int], message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.panic_data = panic_data
        self.message = message  # cairo-lang's full message, with the Cairo traceback


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


# ------------------------------------------------------------------------- helpers


def selector(entry_point: str | int) -> int:
    return entry_point if isinstance(entry_point, int) else get_selector_from_name(entry_point)


def _short_string(felt: int) -> str | None:
    """The text of a Cairo short string, or None if the felt is not printable ASCII."""
    if felt == 0 or felt.bit_length() > 31 * 8:
        return None
    raw = felt.to_bytes((felt.bit_length() + 7) // 8, "big")
    if all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return None


def decode_panic(panic_data: Sequence[int]) -> str:
    """Render panic felts the way Cairo wrote them: short strings as text, others as hex."""
    parts = [_short_string(f) or hex(f) for f in panic_data]
    return ", ".join(parts)


# cairo-lang reports a Cairo 1 panic as "... failure reason: [0x656d707479, ...]." and,
# for a panic in a nested call, quotes that message inside the outer one: the first
# occurrence is the innermost (the original) panic.
_FAILURE_REASON = re.compile(r"failure reason: \[([0-9a-fA-Fx, ]*)\]")


def _to_revert(exc: StarkException) -> CairoRevert:
    message = str(exc.message or "")
    code = getattr(exc.code, "name", str(exc.code))
    match = _FAILURE_REASON.search(message)
    if match:
        panic_data = [int(x, 16) for x in match.group(1).split(",") if x.strip()]
        reason = decode_panic(panic_data)
    else:
        panic_data = []
        reason = message.strip().splitlines()[0] if message.strip() else code
    return CairoRevert(reason, code=code, panic_data=panic_data, message=message)


def _felts(values: Sequence[int], what: str) -> list[int]:
    """Reject what is not a felt: cairo-lang would silently reduce it modulo P."""
    felts = list(values)
    for value in felts:
        if not 0 <= value < FIELD_PRIME:
            raise CairoRevert(
                f"{what}: {value:#x} is not a field element",
                code="OUT_OF_RANGE_FELT",
                panic_data=[],
                message="",
            )
    return felts


def sierra_class_hash(sierra: str) -> int:
    """Class hash of a Sierra class (JSON text; ABI a list or a string), with starknet-py's
    native Poseidon; equal to cairo-lang's pure-Python ``compute_class_hash``, which takes
    seconds. Memoized by content (:mod:`chain.class_cache`)."""

    def compute() -> str:
        data = json.loads(sierra)
        if not isinstance(data.get("abi"), str):
            data["abi"] = json.dumps(data.get("abi", []))
        data.pop("sierra_program_debug_info", None)
        return hex(compute_sierra_class_hash(create_sierra_compiled_contract(json.dumps(data))))

    return int(memoized("class_hash", digest(sierra), compute), 16)


def compiled_class_hash(casm: str) -> int:
    """Compiled class hash of a CASM class: the Poseidon method (Starknet < 0.14.1, the
    version this VM executes). Memoized by content."""

    def compute() -> str:
        return hex(
            compute_casm_class_hash(create_casm_class(casm), hash_method=HashMethod.POSEIDON)
        )

    return int(memoized("compiled_class_hash.poseidon", digest(casm), compute), 16)


def class_hashes(sierra: str, casm: str) -> ClassHashes:
    return ClassHashes(
        class_hash=sierra_class_hash(sierra), compiled_class_hash=compiled_class_hash(casm)
    )


def _as_json_text(value: str | Mapping[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _ChainId:
    """Stands in for cairo-lang's closed ``StarknetChainId`` enum, so any chain id works."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.name = _short_string(value) or hex(value)

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ChainId) and other.value == self.value


class _KeikoGeneralConfig(StarknetGeneralConfig):
    """``StarknetGeneralConfig`` whose ``chain_id`` (what ``get_tx_info`` reports) is ours."""

    _keiko_chain_id: int = DEFAULT_CHAIN_ID

    @property  # type: ignore[override]
    def chain_id(self) -> _ChainId:  # type: ignore[override]
        return _ChainId(self._keiko_chain_id)


class _DictStateReader(SyncStateReader):
    """Serves cairo-lang's state reads from a ``ChainState``; never writes to it."""

    def __init__(self, chain: ChainState, compiled: dict[int, CompiledClassBase]) -> None:
        self._chain = chain
        self._compiled = compiled  # compiled class hash -> parsed CompiledClass

    def get_compiled_class(self, compiled_class_hash: int) -> CompiledClassBase:
        cached = self._compiled.get(compiled_class_hash)
        if cached is not None:
            return cached
        for class_hash, cch in self._chain.compiled_class_hashes.items():
            if cch == compiled_class_hash:
                declared = self._chain.classes[class_hash]
                compiled = CompiledClass.loads(declared.casm)
                self._compiled[compiled_class_hash] = compiled
                return compiled
        raise get_stark_exception_on_undeclared_contract(class_hash=compiled_class_hash)

    def get_sierra_class(self, class_hash: int) -> ContractClass:
        declared = self._chain.classes.get(class_hash)
        if declared is None:
            raise get_stark_exception_on_undeclared_contract(class_hash=class_hash)
        return _load_sierra(declared.sierra)

    def get_compiled_class_hash(self, class_hash: int) -> int:
        return self._chain.compiled_class_hashes.get(class_hash, 0)

    def get_class_hash_at(self, contract_address: int) -> int:
        return self._chain.class_hashes.get(contract_address, 0)

    def get_nonce_at(
        self, data_availability_mode: DataAvailabilityMode, contract_address: int
    ) -> int:
        return self._chain.nonces.get(contract_address, 0)

    def get_storage_at(
        self, data_availability_mode: DataAvailabilityMode, contract_address: int, key: int
    ) -> int:
        return self._chain.storage.get(contract_address, {}).get(key, 0)


def _load_sierra(sierra: str) -> ContractClass:
    data = json.loads(sierra)
    # The class hash covers the ABI as a string: json.dumps of the compiler's list, which
    # is also what starknet-py sends when it declares the class.
    if not isinstance(data.get("abi"), str):
        data["abi"] = json.dumps(data.get("abi", []))
    data.pop("sierra_program_debug_info", None)
    return ContractClass.load(data)


# ---------------------------------------------------------------------------- VM


class CairoVM:
    def __init__(
        self,
        state: ChainState | None = None,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        block: BlockContext | None = None,
    ) -> None:
        self.state = state if state is not None else ChainState()
        self.block = block if block is not None else BlockContext()
        self.chain_id = chain_id
        self._general_config = _KeikoGeneralConfig()
        self._general_config._keiko_chain_id = chain_id
        # Parsed CompiledClass objects outlive calls: parsing CASM JSON costs milliseconds.
        self._compiled: dict[int, CompiledClassBase] = {}
        self._views = ViewCache()
        # What the last call or view read from the chain state (first value of each cell).
        self.last_reads: StateReads | None = None

    def fork(self) -> CairoVM:
        """An independent VM over a copy of the state, sharing the parsed classes."""
        forked = CairoVM(self.state.copy(), chain_id=self.chain_id, block=self.block)
        forked._compiled = self._compiled  # parsed CompiledClass objects are never mutated
        return forked

    # ------------------------------------------------------------------ classes

    def declare(
        self, sierra: str | Mapping[str, Any], casm: str | Mapping[str, Any]
    ) -> ClassHashes:
        sierra_text, casm_text = _as_json_text(sierra), _as_json_text(casm)
        hashes = class_hashes(sierra_text, casm_text)
        class_hash, compiled_class_hash = hashes.class_hash, hashes.compiled_class_hash
        compiled = CompiledClass.loads(casm_text)
        self.state.classes[class_hash] = DeclaredClass(sierra=sierra_text, casm=casm_text)
        self.state.compiled_class_hashes[class_hash] = compiled_class_hash
        self._compiled[compiled_class_hash] = compiled
        return ClassHashes(class_hash=class_hash, compiled_class_hash=compiled_class_hash)

    def declare_build(self, name: str, build_dir: Path = BUILD_DIR) -> ClassHashes:
        return self.declare(
            (build_dir / f"{name}.sierra.json").read_text(),
            (build_dir / f"{name}.casm.json").read_text(),
        )

    # ---------------------------------------------------------------- execution

    def deploy(
        self,
        class_hash: int,
        calldata: Sequence[int] = (),
        *,
        salt: int = 0,
        deployer_address: int = 0,
        commit: bool = True,
        at: int | None = None,
    ) -> Deployment:
        """Place ``class_hash`` at its address and run its constructor (caller: the
        deployer). ``commit=False`` runs it and returns the writes without applying them
        (the dev node journals them itself, as for any call). ``at`` places it at a fixed
        address instead (a chain's system contracts at their well-known addresses)."""
        calldata = _felts(calldata, "constructor calldata")
        address = at
        if address is None:
            address = calculate_contract_address_from_hash(
                salt=salt,
                class_hash=class_hash,
                constructor_calldata=calldata,
                deployer_address=deployer_address,
            )
        if class_hash not in self.state.compiled_class_hashes:
            raise CairoRevert(
                f"class {hex(class_hash)} is not declared",
                code="UNDECLARED_CLASS",
                panic_data=[],
                message="",
            )
        entry_point = ExecuteEntryPoint.create(
            contract_address=address,
            calldata=calldata,
            entry_point_selector=CONSTRUCTOR_ENTRY_POINT_SELECTOR,
            caller_address=deployer_address,
            initial_gas=GasCost.DEFAULT_INITIAL.value,
            entry_point_type=EntryPointType.CONSTRUCTOR,
        )

        def run(state: CachedSyncState, resources: ExecutionResourcesManager) -> CallInfo:
            try:
                state.deploy_contract(contract_address=address, class_hash=class_hash)
            except StarkException as exc:
                raise _to_revert(exc) from exc
            compiled = state.get_compiled_class_by_class_hash(class_hash=class_hash)
            if not compiled.entry_points_by_type[EntryPointType.CONSTRUCTOR]:
                # As Starknet does: no constructor to run, so no calldata to pass it.
                if calldata:
                    raise CairoRevert(
                        "calldata given to a contract without constructor",
                        code="INVALID_CALLDATA",
                        panic_data=[],
                        message="",
                    )
                return CallInfo.empty_constructor_call(
                    contract_address=address,
                    caller_address=deployer_address,
                    class_hash=class_hash,
                )
            return self._execute(state, resources, entry_point, TxContext(), validate=False)

        return Deployment(address=address, result=self._atomic(run, commit=commit))

    def call(
        self,
        contract_address: int,
        entry_point: str | int,
        calldata: Sequence[int] = (),
        *,
        caller_address: int = 0,
        tx: TxContext | None = None,
        validate: bool = False,
        commit: bool = True,
        entry_point_type: str = "EXTERNAL",
    ) -> CallResult:
        if tx is not None:
            _felts(tx.signature, "signature")
        entry = ExecuteEntryPoint.create(
            contract_address=contract_address,
            calldata=_felts(calldata, "calldata"),
            entry_point_selector=selector(entry_point),
            caller_address=caller_address,
            initial_gas=GasCost.DEFAULT_INITIAL.value,
            entry_point_type=EntryPointType[entry_point_type],
        )
        return self._atomic(
            lambda state, resources: self._execute(
                state, resources, entry, tx or TxContext(), validate=validate
            ),
            commit=commit,
        )

    def view(
        self,
        contract_address: int,
        entry_point: str | int,
        calldata: Sequence[int] = (),
        *,
        caller_address: int = 0,
        tx: TxContext | None = None,
    ) -> list[int]:
        """A read-only call's return data. Results are remembered with the state they read
        (storage cells, class hashes, nonces) and, when the call looked at the block or
        transaction (``get_execution_info``), with that context too: a later view with the
        same inputs over unchanged reads is answered without running the VM again."""
        key = ViewKey(contract_address, selector(entry_point), tuple(calldata), caller_address)
        context = (self.block, tx)
        cached = self._views.lookup(key, self.state, context)
        if cached is not None:
            retdata, self.last_reads = cached
            return list(retdata)
        result = self.call(
            contract_address,
            entry_point,
            calldata,
            caller_address=caller_address,
            tx=tx,
            commit=False,
        )
        assert self.last_reads is not None
        self._views.store(key, result, self.last_reads, context)
        return result.retdata

    # -------------------------------------------------------------------- reads

    def get_storage_at(self, contract_address: int, key: int) -> int:
        return self.state.storage.get(contract_address, {}).get(key, 0)

    def get_nonce(self, contract_address: int) -> int:
        return self.state.nonces.get(contract_address, 0)

    def get_class_hash_at(self, contract_address: int) -> int:
        return self.state.class_hashes.get(contract_address, 0)

    def increment_nonce(self, contract_address: int) -> int:
        nonce = self.get_nonce(contract_address) + 1
        self.state.nonces[contract_address] = nonce
        return nonce

    # ---------------------------------------------------------------- internals

    def _block_info(self) -> BlockInfo:
        return BlockInfo.create_for_testing(
            block_number=self.block.number,
            block_timestamp=self.block.timestamp,
            sequencer_address=self.block.sequencer_address,
        )

    def _atomic(
        self,
        run: Callable[[CachedSyncState, ExecutionResourcesManager], CallInfo],
        *,
        commit: bool,
    ) -> CallResult:
        """Run on a scratch state over ``self.state``; merge its writes only on success."""
        reader = _DictStateReader(self.state, self._compiled)
        root = CachedSyncState(
            block_info=self._block_info(),
            state_reader=reader,
            compiled_class_cache=self._compiled,
        )
        resources = ExecutionResourcesManager.empty()
        # copy_and_apply merges the child into root only when the body did not raise, and
        # root itself is thrown away on failure: self.state is never half-written.
        with root.copy_and_apply() as scratch:
            call_info = run(scratch, resources)
        # cairo-lang keeps the pending writes and first reads in StateCache's private dicts
        # and offers no public accessor for them on CachedSyncState (0.14.0.1, pinned).
        cache = root.cache
        self.last_reads = StateReads.of(cache)
        storage_diff: dict[int, dict[int, int]] = {}
        for (address, key), value in cache._storage_writes.items():
            if reader.get_storage_at(_L1, address, key) != value:
                storage_diff.setdefault(address, {})[key] = value
        deployed = {
            address: class_hash
            for address, class_hash in cache._class_hash_writes.items()
            if reader.get_class_hash_at(address) != class_hash
        }
        if commit:
            for address, writes in storage_diff.items():
                self.state.storage.setdefault(address, {}).update(writes)
            self.state.class_hashes.update(deployed)
            self.state.nonces.update(cache._nonce_writes)
        return CallResult(
            retdata=list(call_info.retdata),
            events=[
                Event(from_address=e.from_address, keys=list(e.keys), data=list(e.data))
                for e in call_info.get_sorted_events()
            ],
            storage_diff=storage_diff,
            n_steps=call_info.execution_resources.n_steps,
            class_hash_writes=deployed,
            invocation=_invocation(call_info),
            syscalls=dict(resources.syscall_counter),
        )

    def _execute(
        self,
        state: CachedSyncState,
        resources: ExecutionResourcesManager,
        entry_point: ExecuteEntryPoint,
        tx: TxContext,
        *,
        validate: bool,
    ) -> CallInfo:
        max_steps = (
            VERSIONED_CONSTANTS.validate_max_n_steps
            if validate
            else VERSIONED_CONSTANTS.invoke_tx_max_n_steps
        )
        context = TransactionExecutionContext.create(
            account_contract_address=tx.account_address,
            transaction_hash=tx.transaction_hash,
            signature=list(tx.signature),
            max_fee=tx.max_fee,
            nonce=tx.nonce,
            n_steps=max_steps,
            version=tx.version,
            execution_mode=ExecutionMode.VALIDATE if validate else ExecutionMode.EXECUTE,
        )
        try:
            return entry_point.execute(
                state=state,
                resources_manager=resources,
                tx_execution_context=context,
                general_config=self._general_config,
            )
        except StarkException as exc:
            raise _to_revert(exc) from exc


def _invocation(info: CallInfo) -> Invocation:
    entry_type = info.entry_point_type
    return Invocation(
        contract_address=info.contract_address,
        entry_point_selector=info.entry_point_selector or 0,
        calldata=list(info.calldata),
        caller_address=info.caller_address,
        class_hash=info.class_hash or 0,
        entry_point_type="EXTERNAL" if entry_type is None else entry_type.name,
        call_type="LIBRARY_CALL" if info.call_type is CallType.Delegate else "CALL",
        result=list(info.retdata),
        calls=[_invocation(inner) for inner in info.internal_calls],
        events=[OrderedEvent(e.order, list(e.keys), list(e.data)) for e in info.events],
        n_steps=info.execution_resources.n_steps,
        failed=bool(info.failure_flag),
    )
