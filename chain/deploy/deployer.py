"""Declare and deploy Keiko's four contracts on any Starknet chain, idempotently.

With a funded account on the target chain, :func:`deploy_keiko` sends ordinary v3
transactions through starknet-py's ``Account``:

1. DECLARE each class of ``contracts/build`` that the chain does not know yet: the account
   class learners' accounts are deployed from, the humanity registry, the interaction
   anchor and governance (the chain compiles the Sierra and checks the Poseidon compiled
   class hash);
2. one INVOKE calling the Universal Deployer Contract for each contract not deployed yet
   (``unique``: the address depends on the deploying account, the class, a salt per
   contract name and the constructor calldata, so a second run finds them), plus
   ``add_operator(admin)`` on the anchor when the admin is not an operator yet;
3. the result as ``deployment.json`` (what the rest of Keiko reads).

Everything already declared or deployed at the expected address is reused; a different
class at an expected address stops the deployment with an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call, ResourceBoundsMapping
from starknet_py.net.udc_deployer.deployer import Deployer

from chain.client.deployment import ANCHOR, GOVERNANCE, REGISTRY
from chain.vm import BUILD_DIR, class_hashes

ACCOUNT = "account"
CLASSES = (ACCOUNT, REGISTRY, ANCHOR, GOVERNANCE)
UDC_ADDRESS = 0x02CEED65A4BD731034C01113685C831B01C15D7D432F71AFB1CF1634B53A2125
STRK_ADDRESS = 0x04718F5A0FC34CC1AF16A1CDEE98FFB20C31F5CD61D6AB07201858F4287C938D
CLASS_HASH_NOT_FOUND = 28
CONTRACT_NOT_FOUND = 20


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class BuiltClass:
    name: str
    sierra: str  # the contract class with its ABI as a JSON string, as declared
    class_hash: int
    compiled_class_hash: int


@dataclass
class DeployReport:
    deployment: dict[str, Any]
    declared: list[str] = field(default_factory=list)
    classes_reused: list[str] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    contracts_reused: list[str] = field(default_factory=list)
    tx_hashes: list[int] = field(default_factory=list)


def load_class(name: str, build_dir: Path = BUILD_DIR) -> BuiltClass:
    sierra = json.loads((build_dir / f"{name}.sierra.json").read_text())
    if not isinstance(sierra.get("abi"), str):
        sierra["abi"] = json.dumps(sierra.get("abi", []))
    sierra.pop("sierra_program_debug_info", None)
    sierra_text = json.dumps(sierra)
    hashes = class_hashes(sierra_text, (build_dir / f"{name}.casm.json").read_text())
    return BuiltClass(name, sierra_text, hashes.class_hash, hashes.compiled_class_hash)


def _code(err: ClientError) -> int | None:
    try:
        return int(err.code) if err.code is not None else None
    except (TypeError, ValueError):
        return None


async def _is_declared(account: Account, class_hash: int) -> bool:
    try:
        await account.client.get_class_by_hash(class_hash)
    except ClientError as err:
        if _code(err) == CLASS_HASH_NOT_FOUND:
            return False
        raise
    return True


async def _class_at(account: Account, address: int) -> int | None:
    try:
        return await account.client.get_class_hash_at(address)
    except ClientError as err:
        if _code(err) == CONTRACT_NOT_FOUND:
            return None
        raise


async def _wait(account: Account, tx_hash: int, what: str) -> None:
    receipt = await account.client.wait_for_tx(tx_hash, check_interval=0.05)
    if receipt.execution_status is not None and receipt.execution_status.name != "SUCCEEDED":
        raise DeployError(f"{what} reverted: {receipt.revert_reason}")


async def deploy_keiko(
    account: Account,
    *,
    build_dir: Path = BUILD_DIR,
    udc: int = UDC_ADDRESS,
    fee_token: int = STRK_ADDRESS,
    resource_bounds: ResourceBoundsMapping | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> DeployReport:
    """Deploy (or find) Keiko's contracts with ``account``, which becomes their admin and
    the anchor's first operator. ``resource_bounds``: fixed bounds for every transaction
    (default: each one estimated by the chain)."""
    client = account.client
    chain_id = int(await client.get_chain_id(), 16)
    admin = account.address
    fees: dict[str, Any] = (
        {"resource_bounds": resource_bounds} if resource_bounds else {"auto_estimate": True}
    )
    report = DeployReport(deployment={})
    built = {name: load_class(name, build_dir) for name in CLASSES}
    for item in built.values():
        if await _is_declared(account, item.class_hash):
            report.classes_reused.append(item.name)
            say(f"class {item.name:<20} {hex(item.class_hash)} (already declared)")
            continue
        tx = await account.sign_declare_v3(
            compiled_contract=item.sierra, compiled_class_hash=item.compiled_class_hash, **fees
        )
        sent = await client.declare(tx)
        await _wait(account, sent.transaction_hash, f"declaring {item.name}")
        report.declared.append(item.name)
        report.tx_hashes.append(sent.transaction_hash)
        say(f"class {item.name:<20} {hex(item.class_hash)} declared")

    deployer = Deployer(deployer_address=udc, account_address=admin)

    def deployment(name: str, calldata: list[int]) -> tuple[Call, int]:
        planned = deployer.create_contract_deployment_raw(
            built[name].class_hash, salt=get_selector_from_name(name), raw_calldata=calldata
        )
        return planned.call, planned.address

    registry_call, registry = deployment(REGISTRY, [])
    anchor_call, anchor = deployment(ANCHOR, [admin])
    governance_call, governance = deployment(GOVERNANCE, [registry])
    calls: list[Call] = []
    addresses = {REGISTRY: registry, ANCHOR: anchor, GOVERNANCE: governance}
    for name, call in (
        (REGISTRY, registry_call),
        (ANCHOR, anchor_call),
        (GOVERNANCE, governance_call),
    ):
        found = await _class_at(account, addresses[name])
        if found is None:
            calls.append(call)
            report.deployed.append(name)
        elif found == built[name].class_hash:
            report.contracts_reused.append(name)
        else:
            raise DeployError(
                f"{hex(addresses[name])} holds class {hex(found)}, not {name} "
                f"({hex(built[name].class_hash)})"
            )
    operator = (
        []
        if ANCHOR in report.contracts_reused
        and (
            await client.call_contract(Call(anchor, get_selector_from_name("is_operator"), [admin]))
        )[0]
        else [Call(anchor, get_selector_from_name("add_operator"), [admin])]
    )
    if calls or operator:
        invoked = await account.execute_v3(calls + operator, **fees)
        await _wait(account, invoked.transaction_hash, "deploying the contracts")
        report.tx_hashes.append(invoked.transaction_hash)
    for name, address in addresses.items():
        state = "deployed" if name in report.deployed else "already deployed"
        say(f"contract {name:<17} {hex(address)} ({state})")
    report.deployment = {
        "chain_id": hex(chain_id),
        "account_class_hash": hex(built[ACCOUNT].class_hash),
        "contracts": {
            name: {"address": hex(address), "class_hash": hex(built[name].class_hash)}
            for name, address in addresses.items()
        },
        "admin": hex(admin),
        "operators": [hex(admin)],
        "udc": hex(udc),
        "fee_token": hex(fee_token),
    }
    return report
