"""What makes cairo-lang faster here, installed once on import (by `chain.vm`): the faster,
proven-equal Stark ECDSA of `chain.fast_ecdsa`, hints compiled once, and programs loaded
into a runner's memory in one update."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
from collections.abc import Sequence
from typing import Any

from starkware.cairo.lang.vm.memory_dict import MemoryDict
from starkware.cairo.lang.vm.memory_segments import MemorySegmentManager
from starkware.cairo.lang.vm.relocatable import RelocatableValue
from starkware.cairo.lang.vm.virtual_machine_base import VirtualMachineBase

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


# Same results, ~20x faster Stark ECDSA in __validate__ (see chain.fast_ecdsa).
fast_ecdsa.install()
_memoize_hint_compilation()
_fast_program_loading()
