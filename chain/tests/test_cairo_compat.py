"""The cairo-lang 0.14.0.1 import fix (chain.cairo_compat).

Import behaviour depends on interpreter state (sys.modules, sys.meta_path), so every
check runs in a fresh interpreter started from the repository root, where Keiko's own
``services`` package shadows cairo-lang's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from chain import cairo_compat

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_unpatched_import_fails_on_this_python() -> None:
    # Documents the defect the module exists for; if cairo-lang ever fixes it this
    # test tells us the shim can go (the check exists from Python 3.11, our minimum).
    result = _run("import starkware.cairo.lang.instances")
    assert result.returncode != 0
    assert "mutable default" in result.stderr
    assert "cpu_instance_def" in result.stderr


def test_patched_import_gives_working_layouts() -> None:
    result = _run(
        """
        import chain.cairo_compat
        from starkware.cairo.lang import instances
        layout = instances.starknet_with_keccak_instance
        assert layout.cpu_instance_def == instances.CpuInstanceDef(safe_call=True)
        # default_factory gives every layout its own equal instance.
        assert instances.CairoLayout().cpu_instance_def == instances.CpuInstanceDef()
        assert instances.__file__.endswith("starkware/cairo/lang/instances.py")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_starknet_execution_and_both_services_packages_import() -> None:
    result = _run(
        """
        import chain.cairo_compat
        from starkware.starknet.business_logic.execution.execute_entry_point import (
            ExecuteEntryPoint,
        )
        from starkware.starknet.definitions.general_config import StarknetGeneralConfig
        import services.everest.definitions.fields  # cairo-lang's ``services``
        import services.kit  # Keiko's ``services``
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr


def test_install_is_idempotent() -> None:
    result = _run(
        """
        import sys
        import chain.cairo_compat as compat
        compat.install()
        compat.install()
        import importlib
        importlib.reload(compat)
        finders = [f for f in sys.meta_path if type(f).__name__ == "_CairoCompatFinder"]
        assert len(finders) == 1, finders
        import starkware.cairo.lang.instances
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr


def test_patch_source_rewrites_only_the_broken_default() -> None:
    source = (
        "a: int = field(default=1)\n"
        "cpu_instance_def: CpuInstanceDef = field(default=CpuInstanceDef())\n"
    )
    patched = cairo_compat.patch_source(source)
    assert patched == (
        "a: int = field(default=1)\n"
        "cpu_instance_def: CpuInstanceDef = field(default_factory=CpuInstanceDef)\n"
    )
    assert cairo_compat.patch_source(patched) == patched
    assert cairo_compat.is_installed()
