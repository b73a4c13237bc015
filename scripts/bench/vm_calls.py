"""Benchmark: CPU time of one contract call in the Cairo VM (``chain.vm.CairoVM``), with
a program's cells written into each new runner's memory in one update (the node's way,
``chain.vm.speedups._fast_program_loading``) and with cairo-lang's own cell-by-cell loading.

Process time (CPU of this process only), so other load on the machine changes the
figures little. Each round: ``--calls`` ``anchor_batch`` calls (a new batch each) on the
interaction anchor, both ways, alternated.

    .venv/bin/python -m scripts.bench.vm_calls [--calls 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from starkware.cairo.lang.vm.memory_segments import MemorySegmentManager

from chain.tests.contracts.helpers import CONTRACTS, felt
from chain.vm import BlockContext, CairoVM

ADMIN, OPERATOR = 0xA11CE, 0x0BE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    vm = CairoVM(block=BlockContext(number=1, timestamp=1_700_000_000))
    hashes = {name: vm.declare_build(name).class_hash for name in CONTRACTS}
    anchor = vm.deploy(hashes["interaction_anchor"], [ADMIN]).address
    vm.call(anchor, "add_operator", [OPERATOR], caller_address=ADMIN)
    fast: Any = MemorySegmentManager.load_data
    original = fast._keiko_original
    batch = iter(range(1, 10**9))

    def per_call() -> float:
        started = time.process_time()
        for _ in range(args.calls):
            n = next(batch)
            vm.call(
                anchor,
                "anchor_batch",
                [n, 0x1000 + n, 4, felt("learning")],
                caller_address=OPERATOR,
            )
        return (time.process_time() - started) / args.calls * 1000

    per_call()  # warm: hints compiled, program cells kept
    for round_ in range(1, args.rounds + 1):
        MemorySegmentManager.load_data = fast  # type: ignore[method-assign]
        with_update = per_call()
        MemorySegmentManager.load_data = original  # type: ignore[method-assign]
        cell_by_cell = per_call()
        MemorySegmentManager.load_data = fast  # type: ignore[method-assign]
        print(
            f"round {round_}: anchor_batch {with_update:.1f} ms CPU per call with one update, "
            f"{cell_by_cell:.1f} ms cell by cell"
        )


if __name__ == "__main__":
    main()
