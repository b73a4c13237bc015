"""Helpers shared by the contract tests."""

from __future__ import annotations

import json

import pytest

from chain.vm import BUILD_DIR, CairoRevert, CairoVM, CallResult

CONTRACTS = ("account", "humanity_registry", "interaction_anchor", "governance")
CLASSES: dict[str, dict[str, str]] = json.loads((BUILD_DIR / "classes.json").read_text())

# Plain addresses standing in for accounts: the contracts only see the caller address.
ADMIN = 0xAD
OPERATOR = 0x0B
ALICE = 0xA11CE
BOB = 0xB0B
CAROL = 0xCA201
DAVE = 0xDA5E


def felt(text: str) -> int:
    """A Cairo short string as a felt."""
    return int.from_bytes(text.encode("ascii"), "big")


def class_hash(name: str) -> int:
    return int(CLASSES[name]["class_hash"], 16)


def u256(value: int) -> list[int]:
    """Calldata of a Cairo u256: (low, high)."""
    return [value & ((1 << 128) - 1), value >> 128]


def from_u256(low: int, high: int) -> int:
    return low | (high << 128)


def expect_revert(
    vm: CairoVM,
    address: int,
    entry_point: str,
    calldata: list[int],
    reason: str,
    *,
    caller: int = 0,
) -> CairoRevert:
    """Assert the call panics with ``reason`` and leaves the chain state untouched."""
    before = vm.state.to_json()
    with pytest.raises(CairoRevert) as info:
        vm.call(address, entry_point, calldata, caller_address=caller)
    assert info.value.reason == reason, info.value.message
    assert vm.state.to_json() == before
    return info.value


def event_names(result: CallResult) -> list[int]:
    """First key of each event: the selector of the event name."""
    return [event.keys[0] for event in result.events]
