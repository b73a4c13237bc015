"""chain.vm.speedups: what replaces cairo-lang's own code gives the same objects."""

from __future__ import annotations

import chain.cairo_compat  # must precede starkware imports

# isort: split
from typing import Any

from starkware.cairo.common.structs import CairoStructFactory
from starkware.cairo.lang.cairo_constants import DEFAULT_PRIME
from starkware.cairo.lang.compiler.cairo_compile import compile_cairo
from starkware.cairo.lang.compiler.program import Program
from starkware.cairo.lang.compiler.scoped_name import ScopedName
from starkware.cairo.lang.vm.memory_dict import MemoryDict
from starkware.cairo.lang.vm.relocatable import RelocatableValue
from starkware.cairo.lang.vm.vm_core import RunContext, VirtualMachine
from starkware.starknet.core.os.syscall_utils import (
    STARKNET_SYSCALLS_COMPILED_PATH,
    load_program,
)

import chain.vm  # noqa: F401  (installs the speedups)


def syscalls_program() -> Program:
    program = load_program(path=STARKNET_SYSCALLS_COMPILED_PATH)
    assert isinstance(program, Program)
    return program


def small_program() -> Program:
    code = "func main() {\n" + "    [ap] = 1, ap++;\n" * 40 + "    ret;\n}\n"
    program = compile_cairo(code, prime=DEFAULT_PRIME)
    assert len(program.data) > 40
    return program


def context(program: Program) -> RunContext:
    return RunContext(
        memory=MemoryDict(),
        pc=RelocatableValue(0, 0),
        ap=RelocatableValue(1, 0),
        fp=RelocatableValue(1, 0),
        prime=program.prime,
    )


def test_a_new_vm_is_what_cairo_langs_own_init_makes() -> None:
    fast_init: Any = VirtualMachine.__init__
    assert getattr(fast_init, "_keiko_fast", False), "not installed over this cairo-lang"
    program = small_program()
    own = VirtualMachine.__new__(VirtualMachine)
    fast_init._keiko_original(own, program, context(program), hint_locals={})
    for _ in range(2):  # built once, then copied from what was kept
        fast = VirtualMachine(program, context(program), hint_locals={})
        assert fast.accessed_addresses == own.accessed_addresses
        assert len(fast.accessed_addresses) == len(program.data)
        assert set(vars(fast)) == set(vars(own))
        for name in ("current_step", "skip_instruction_execution", "enable_instruction_trace"):
            assert getattr(fast, name) == getattr(own, name)
        assert fast.trace == [] and fast.ecdsa_additional_data == {}
    fast.accessed_addresses.add(RelocatableValue(5, 5))  # each VM has its own set
    again = VirtualMachine(program, context(program), hint_locals={}, program_base=None)
    assert RelocatableValue(5, 5) not in again.accessed_addresses
    elsewhere = VirtualMachine(
        program, context(program), hint_locals={}, program_base=RelocatableValue(0, 7)
    )
    assert min(a.offset for a in elsewhere.accessed_addresses) == 7


def test_syscall_structs_are_built_once_with_cairo_langs_fields() -> None:
    built: Any = CairoStructFactory.build_struct
    defined: Any = CairoStructFactory.get_struct_definition
    factory = CairoStructFactory.from_program(syscalls_program(), additional_imports=[])
    name = ScopedName.from_string("RequestHeader")
    first = factory.build_struct(name)
    assert factory.build_struct(name) is first
    assert first._fields == built._keiko_original(factory, name)._fields
    assert factory.get_struct_definition(name) == defined._keiko_original(factory, name)
    header = first(selector=1, gas=2)
    assert header.selector == 1 and header.gas == 2
