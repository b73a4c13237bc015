"""Sierra -> CASM, as a sequencer compiles a declared class.

The node never takes CASM from a client: a DECLARE carries the Sierra class and the
compiled class hash its sender claims, and the node compiles the class itself with the
``starknet-sierra-compile`` bundled with cairo-lang 0.14.0.1 (Python hints added, because
cairo-lang's VM executes them) and compares the hash. The result is memoized by the digest
of the Sierra class (:mod:`chain.class_cache`).
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from starkware.starknet.compiler.v1.compiler_exe_paths import STARKNET_SIERRA_COMPILE_EXE

from chain.class_cache import digest, memoized

COMPILE_ARGS = ("--add-pythonic-hints", "--allowed-libfuncs-list-name", "all")
TIMEOUT_S = 120.0


class CompilationFailed(Exception):
    pass


def _compile(sierra: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory(prefix="keikochain-declare-") as tmp:
        source = Path(tmp) / "class.sierra.json"
        target = Path(tmp) / "class.casm.json"
        source.write_text(json.dumps(sierra))
        try:
            result = subprocess.run(
                [STARKNET_SIERRA_COMPILE_EXE, str(source), str(target), *COMPILE_ARGS],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CompilationFailed(f"compilation took more than {TIMEOUT_S:.0f} s") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise CompilationFailed(detail[-1] if detail else "the compiler failed")
        return target.read_text()


def compile_sierra(contract_class: dict[str, Any]) -> str:
    """CASM JSON text of a Sierra contract class (RPC form: ABI a string)."""
    sierra = {
        "sierra_program": contract_class["sierra_program"],
        "contract_class_version": contract_class["contract_class_version"],
        "entry_points_by_type": contract_class["entry_points_by_type"],
        # The compiler does not need the ABI (and a client's ABI text may not parse).
        "abi": None,
    }
    key = digest(json.dumps(sierra, sort_keys=True))
    casm = memoized("casm", key, lambda: _compile(sierra))
    return casm
