"""Contract classes: selectors, class hashes of Sierra and CASM classes (memoized by
content) and the compiled contracts of `contracts/build/`."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starknet_py.common import create_casm_class, create_sierra_compiled_contract
from starknet_py.hash.casm_class_hash import compute_casm_class_hash
from starknet_py.hash.hash_method import HashMethod
from starknet_py.hash.sierra_class_hash import compute_sierra_class_hash
from starkware.starknet.public.abi import get_selector_from_name
from starkware.starknet.services.api.contract_class.contract_class import ContractClass

from chain.class_cache import digest, memoized
from chain.vm.values import ClassHashes

BUILD_DIR = Path(__file__).resolve().parents[2] / "contracts" / "build"


def selector(entry_point: str | int) -> int:
    return entry_point if isinstance(entry_point, int) else get_selector_from_name(entry_point)


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


def as_json_text(value: str | Mapping[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def load_sierra(sierra: str) -> ContractClass:
    data = json.loads(sierra)
    # The class hash covers the ABI as a string: json.dumps of the compiler's list, which
    # is also what starknet-py sends when it declares the class.
    if not isinstance(data.get("abi"), str):
        data["abi"] = json.dumps(data.get("abi", []))
    data.pop("sierra_program_debug_info", None)
    return ContractClass.load(data)
