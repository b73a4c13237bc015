"""What makes cairo-lang faster here, installed once on import (by `chain.vm`): the faster,
proven-equal Stark ECDSA of `chain.fast_ecdsa`, hints compiled once, programs loaded
into a runner's memory in one update, a program's addresses enumerated once, and the
syscall structs built once."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import copy
import hashlib
import inspect
from collections.abc import Sequence
from typing import Any

from starkware.cairo.common.structs import CairoStructFactory
from starkware.cairo.lang.vm.memory_dict import MemoryDict
from starkware.cairo.lang.vm.memory_segments import MemorySegmentManager
from starkware.cairo.lang.vm.relocatable import RelocatableValue
from starkware.cairo.lang.vm.virtual_machine_base import VirtualMachineBase
from starkware.cairo.lang.vm.vm_core import VirtualMachine

from chain import fast_ecdsa


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


# VirtualMachine.__init__ of cairo-lang 0.14.0.1, the one _known_program_addresses repeats.
_VM_INIT_SHA256 = "c2cf1cc4c4591b943d77d5ed5326b921c38289177921f2ca6f2ab3048bf71c42"


def _known_program_addresses() -> None:
    """A new VirtualMachine (one per contract call, several per transaction) starts its
    ``accessed_addresses`` with every address of its program, built one RelocatableValue
    addition at a time: tens of thousands per call, about a seventh of the node's CPU per
    anchor_batch (py-spy). The set is the same for the same program data at the same
    base, so it is built once and copied (a C-level copy, hashes kept). cairo-lang's
    ``__init__`` is repeated here as is, but for that line, so it is installed only over
    the exact source it repeats."""
    original = VirtualMachine.__init__
    if getattr(original, "_keiko_fast", False):
        return
    if hashlib.sha256(inspect.getsource(original).encode()).hexdigest() != _VM_INIT_SHA256:
        return  # another cairo-lang: keep its own
    known: dict[tuple[int, Any], tuple[Sequence[Any], frozenset[Any]]] = {}

    def __init__(
        self: Any,
        program: Any,
        run_context: Any,
        hint_locals: dict[str, Any],
        static_locals: dict[str, Any] | None = None,
        builtin_runners: dict[str, Any] | None = None,
        program_base: Any = None,
        enable_instruction_trace: bool = True,
    ) -> None:
        self.run_context = copy.copy(run_context)
        if program_base is None:
            program_base = run_context.pc
        if builtin_runners is None:
            builtin_runners = {}
        VirtualMachineBase.__init__(
            self,
            program=program,
            run_context=self.run_context,
            hint_locals=hint_locals,
            static_locals=static_locals,
            builtin_runners=builtin_runners,
            program_base=program_base,
        )
        data = self.program.data
        key = (id(data), program_base)
        entry = known.get(key)
        if entry is None or entry[0] is not data:
            if len(known) >= _PROGRAM_CELLS_CACHE:
                known.clear()
            entry = (data, frozenset(program_base + i for i in range(len(data))))
            known[key] = entry
        self.accessed_addresses = set(entry[1])
        self._trace = [] if enable_instruction_trace else None
        self.current_step = 0
        self.skip_instruction_execution = False
        self.enable_instruction_trace = enable_instruction_trace
        self.ecdsa_additional_data = {}

    __init__._keiko_fast = True  # type: ignore[attr-defined]
    __init__._keiko_original = original  # type: ignore[attr-defined]
    VirtualMachine.__init__ = __init__  # type: ignore[method-assign]


def _memoize_struct_building() -> None:
    """Every syscall reads its request and writes its response through namedtuple classes
    that cairo-lang creates anew each time (``typing.NamedTuple`` per struct, per syscall:
    about a twelfth of the node's CPU). A factory's identifiers never change, so each
    struct's class and definition are built once per factory."""
    build, definition = CairoStructFactory.build_struct, CairoStructFactory.get_struct_definition
    if getattr(build, "_keiko_memoized", False):
        return

    def build_struct(self: Any, name: Any) -> Any:
        built: dict[Any, Any] = self.__dict__.setdefault("_keiko_built", {})
        found = built.get(name)
        if found is None:
            found = built[name] = build(self, name)
        return found

    def get_struct_definition(self: Any, name: Any) -> Any:
        defined: dict[Any, Any] = self.__dict__.setdefault("_keiko_defined", {})
        found = defined.get(name)
        if found is None:
            found = defined[name] = definition(self, name)
        return found

    build_struct._keiko_memoized = True  # type: ignore[attr-defined]
    build_struct._keiko_original = build  # type: ignore[attr-defined]
    get_struct_definition._keiko_original = definition  # type: ignore[attr-defined]
    CairoStructFactory.build_struct = build_struct  # type: ignore[method-assign]
    CairoStructFactory.get_struct_definition = get_struct_definition  # type: ignore[method-assign]


# Same results, ~20x faster Stark ECDSA in __validate__ (see chain.fast_ecdsa).
fast_ecdsa.install()
_memoize_hint_compilation()
_fast_program_loading()
_known_program_addresses()
_memoize_struct_building()
