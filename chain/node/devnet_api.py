"""starknet-devnet's ``devnet_*`` methods that tools use against a dev chain, with
devnet's parameter names and answers (starknet-py's ``DevnetClient`` reads them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chain.node import errors
from chain.node.codec import parse_block_id, parse_felt, parse_int
from chain.node.registry import method, required

if TYPE_CHECKING:
    from chain.node.node import DevNode

UNITS = ("FRI", "WEI")


def _unit(p: dict[str, Any], default: str) -> str:
    unit = p.get("unit", default)
    if unit not in UNITS:
        raise errors.invalid_params("unit: expected FRI or WEI")
    return str(unit)


@method("devnet_mint", "address", "amount", "unit")
def _mint(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    address = parse_felt(required(p, "address"), "address")
    amount = required(p, "amount")
    if isinstance(amount, str) and amount.isdigit():
        amount = int(amount)
    amount = parse_int(amount, "amount", minimum=1, maximum=2**128 - 1)
    return node.mint(address, amount, _unit(p, "FRI"))


@method("devnet_getAccountBalance", "address", "unit", "block_tag")
def _balance(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    address = parse_felt(required(p, "address"), "address")
    tag = parse_block_id(p.get("block_tag", "latest"), "block_tag")
    if tag.tag is None:
        raise errors.invalid_params("block_tag: expected latest, pre_confirmed or l1_accepted")
    unit = _unit(p, "WEI")
    return {"amount": str(node.balance(address, unit)), "unit": unit}


@method("devnet_increaseTime", "time")
def _increase_time(node: DevNode, p: dict[str, Any]) -> dict[str, Any]:
    seconds = parse_int(required(p, "time"), "time")
    return node.increase_time(seconds)


@method("devnet_getPredeployedAccounts", "with_balance")
def _predeployed(node: DevNode, p: dict[str, Any]) -> list[dict[str, Any]]:
    with_balance = p.get("with_balance", False)
    if not isinstance(with_balance, bool):
        raise errors.invalid_params("with_balance: expected a boolean")
    return node.predeployed_json(with_balance)
