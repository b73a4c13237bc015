"""Genesis of a Keikochain dev chain: accounts and Keiko contracts in block 0.

Genesis declares the compiled classes from ``contracts/build``, deploys ``N`` accounts
(keys derived from a seed, see :mod:`chain.node.accounts`), the humanity registry, the
interaction anchor (admin = account 0, account 0 its first operator) and governance
(wired to the registry), all in the Cairo VM, and records the result as block 0. The
addresses go to ``<data dir>/deployment.json``, which the rest of Keiko reads.
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starknet_py.hash.address import compute_address
from starknet_py.hash.selector import get_selector_from_name

from chain.node.accounts import DevAccount, derive_accounts
from chain.node.store import DeclaredClass, StateDiff
from chain.vm import CairoVM

ACCOUNT = "account"
REGISTRY = "humanity_registry"
ANCHOR = "interaction_anchor"
GOVERNANCE = "governance"
KEIKO_CONTRACTS = (REGISTRY, ANCHOR, GOVERNANCE)


@dataclass(frozen=True)
class GenesisResult:
    accounts: list[DevAccount]
    diff: StateDiff
    deployment: dict[str, Any]


def _constructor_inputs(sierra: dict[str, Any]) -> list[str]:
    abi = sierra.get("abi", [])
    if isinstance(abi, str):
        abi = json.loads(abi)
    for entry in abi:
        if entry.get("type") == "constructor":
            return [str(i["name"]) for i in entry.get("inputs", [])]
    return []


def _constructor_calldata(name: str, inputs: list[str], known: dict[str, int]) -> list[int]:
    calldata = []
    for arg in inputs:
        if arg not in known:
            raise ValueError(f"genesis: no value for constructor argument {name}.{arg}")
        calldata.append(known[arg])
    return calldata


def _deploy(
    vm: CairoVM, class_hash: int, calldata: list[int], salt: int, sierra: dict[str, Any]
) -> int:
    """``vm.deploy``, except for a class without a constructor: Starknet then deploys by
    setting the class hash alone (``CairoVM.deploy`` always runs a constructor)."""
    if sierra.get("entry_points_by_type", {}).get("CONSTRUCTOR"):
        return vm.deploy(class_hash, calldata, salt=salt).address
    if calldata:
        raise ValueError("constructor calldata given for a class without a constructor")
    address = compute_address(
        class_hash=class_hash, constructor_calldata=[], salt=salt, deployer_address=0
    )
    if vm.get_class_hash_at(address):
        raise ValueError(f"address {hex(address)} is already deployed")
    vm.state.class_hashes[address] = class_hash
    return address


def build_genesis(vm: CairoVM, build_dir: Path, n_accounts: int, seed: str) -> GenesisResult:
    if n_accounts < 1:
        raise ValueError("genesis needs at least one account (account 0 is the operator)")
    sierras: dict[str, dict[str, Any]] = {}
    casms: dict[str, dict[str, Any]] = {}
    class_hashes: dict[str, int] = {}
    declared: list[DeclaredClass] = []
    for name in (ACCOUNT, *KEIKO_CONTRACTS):
        sierra_path = build_dir / f"{name}.sierra.json"
        casm_path = build_dir / f"{name}.casm.json"
        if not sierra_path.exists() or not casm_path.exists():
            if name == ACCOUNT:
                raise FileNotFoundError(f"{sierra_path} is missing: compile the contracts first")
            continue
        sierras[name] = json.loads(sierra_path.read_text())
        casms[name] = json.loads(casm_path.read_text())
        hashes = vm.declare(sierras[name], casms[name])
        class_hashes[name] = hashes.class_hash
        declared.append(
            DeclaredClass(hashes.class_hash, hashes.compiled_class_hash, sierras[name], casms[name])
        )

    accounts = derive_accounts(seed, n_accounts, class_hashes[ACCOUNT])
    for account in accounts:
        deployed = vm.deploy(
            class_hashes[ACCOUNT], [account.public_key], salt=account.public_key
        ).address
        assert deployed == account.address, "account address derivation mismatch"

    admin = accounts[0].address
    known: dict[str, int] = {"admin": admin, "owner": admin}
    contracts: dict[str, dict[str, str]] = {}
    for name in KEIKO_CONTRACTS:
        if name not in class_hashes:
            continue
        calldata = _constructor_calldata(name, _constructor_inputs(sierras[name]), known)
        salt = get_selector_from_name(name)
        address = _deploy(vm, class_hashes[name], calldata, salt, sierras[name])
        contracts[name] = {"address": hex(address), "class_hash": hex(class_hashes[name])}
        if name == REGISTRY:
            for alias in ("registry", "humanity_registry", "registry_address"):
                known[alias] = address
    if ANCHOR in contracts:
        vm.call(
            int(contracts[ANCHOR]["address"], 16),
            "add_operator",
            [admin],
            caller_address=admin,
        )

    state = vm.state
    diff = StateDiff(
        storage={(a, k): v for a, slots in state.storage.items() for k, v in slots.items()},
        nonces={a: n for a, n in state.nonces.items() if n},
        class_hashes=dict(state.class_hashes),
        declared=declared,
    )
    deployment = {
        "chain_id": hex(vm.chain_id),
        "account_class_hash": hex(class_hashes[ACCOUNT]),
        "contracts": contracts,
        "admin": hex(admin),
        "operators": [hex(admin)] if ANCHOR in contracts else [],
    }
    return GenesisResult(accounts=accounts, diff=diff, deployment=deployment)


def write_json_atomic(path: Path, body: Any, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
