"""scripts/compile_contracts.py: drift detection and the committed class hashes.

Recompiling takes ~10 s and the compiler download needs PyPI, so the full
``--check`` runs as its own CI step; these tests cover the logic around it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from starknet_py.common import create_casm_class, create_sierra_compiled_contract
from starknet_py.hash.casm_class_hash import compute_casm_class_hash
from starknet_py.hash.hash_method import HashMethod
from starknet_py.hash.sierra_class_hash import compute_sierra_class_hash

from chain.vm import BUILD_DIR

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "compile_contracts.py"
SOURCES = sorted(p.stem for p in (BUILD_DIR.parent / "src").glob("*.cairo"))


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compile_contracts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module's annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_source_has_committed_artifacts() -> None:
    classes = json.loads((BUILD_DIR / "classes.json").read_text())
    assert sorted(classes) == SOURCES
    for name in SOURCES:
        assert (BUILD_DIR / f"{name}.sierra.json").is_file()
        assert (BUILD_DIR / f"{name}.casm.json").is_file()


@pytest.mark.parametrize("name", SOURCES)
def test_manifest_hashes_match_artifacts(name: str) -> None:
    classes = json.loads((BUILD_DIR / "classes.json").read_text())
    sierra = create_sierra_compiled_contract((BUILD_DIR / f"{name}.sierra.json").read_text())
    casm = create_casm_class((BUILD_DIR / f"{name}.casm.json").read_text())
    assert hex(compute_sierra_class_hash(sierra)) == classes[name]["class_hash"]
    assert (
        hex(compute_casm_class_hash(casm, hash_method=HashMethod.POSEIDON))
        == classes[name]["compiled_class_hash"]
    )


def test_drift_lists_changed_missing_and_stale_files(script: ModuleType, tmp_path: Path) -> None:
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    fresh.mkdir()
    committed.mkdir()
    for directory in (fresh, committed):
        (directory / "same.casm.json").write_text("{}\n")
    (fresh / "changed.casm.json").write_text('{"a": 1}\n')
    (committed / "changed.casm.json").write_text('{"a": 2}\n')
    (fresh / "new.casm.json").write_text("{}\n")
    (committed / "removed.casm.json").write_text("{}\n")

    problems = script.drift(fresh, committed)
    assert problems == [
        f"missing: {committed / 'new.casm.json'}",
        f"stale (no source): {committed / 'removed.casm.json'}",
        f"differs from sources: {committed / 'changed.casm.json'}",
    ]
    assert script.drift(fresh, fresh) == []
