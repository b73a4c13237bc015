"""humanity_registry: one registration per human, Ed25519 key rotation and revocation."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey
from starknet_py.hash.selector import get_selector_from_name

from chain.tests.contracts.helpers import (
    ALICE,
    BOB,
    class_hash,
    expect_revert,
    from_u256,
    u256,
)
from chain.vm import CairoVM, Event

COMMITMENT_A = 0xC0FFEE
COMMITMENT_B = 0xBEEF


def ed25519_pubkey(seed: int) -> int:
    """A real Ed25519 public key (32 bytes) as the u256 the contract stores."""
    key = SigningKey(seed.to_bytes(32, "big")).verify_key
    return int.from_bytes(bytes(key), "big")


KEY_1, KEY_2, KEY_3 = (ed25519_pubkey(s) for s in (1, 2, 3))


@pytest.fixture
def registry(vm: CairoVM) -> int:
    return vm.deploy(class_hash("humanity_registry"), []).address


def register(vm: CairoVM, registry: int, account: int, commitment: int, key: int) -> None:
    vm.call(registry, "register", [commitment, *u256(key)], caller_address=account)


def test_register_records_the_human_and_emits(vm: CairoVM, registry: int) -> None:
    assert vm.view(registry, "is_human", [ALICE]) == [0]
    result = vm.call(registry, "register", [COMMITMENT_A, *u256(KEY_1)], caller_address=ALICE)
    assert result.events == [
        Event(
            from_address=registry,
            keys=[get_selector_from_name("Registered"), ALICE, COMMITMENT_A],
            data=u256(KEY_1),
        )
    ]
    assert vm.view(registry, "is_human", [ALICE]) == [1]
    assert from_u256(*vm.view(registry, "get_key", [ALICE])) == KEY_1
    assert vm.view(registry, "get_commitment", [ALICE]) == [COMMITMENT_A]
    assert vm.view(registry, "get_account_by_commitment", [COMMITMENT_A]) == [ALICE]
    assert vm.view(registry, "get_account_by_commitment", [COMMITMENT_B]) == [0]
    assert vm.view(registry, "human_count") == [1]


def test_second_registration_by_same_account_is_rejected(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    expect_revert(
        vm,
        registry,
        "register",
        [COMMITMENT_B, *u256(KEY_2)],
        "account already registered",
        caller=ALICE,
    )


def test_reused_commitment_is_rejected(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    expect_revert(
        vm,
        registry,
        "register",
        [COMMITMENT_A, *u256(KEY_2)],
        "commitment already used",
        caller=BOB,
    )
    assert vm.view(registry, "is_human", [BOB]) == [0]


def test_reused_ed25519_key_is_rejected(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    expect_revert(
        vm, registry, "register", [COMMITMENT_B, *u256(KEY_1)], "key already used", caller=BOB
    )


def test_zero_inputs_are_rejected(vm: CairoVM, registry: int) -> None:
    expect_revert(vm, registry, "register", [0, *u256(KEY_1)], "zero commitment", caller=ALICE)
    expect_revert(vm, registry, "register", [COMMITMENT_A, 0, 0], "zero key", caller=ALICE)
    expect_revert(
        vm, registry, "register", [COMMITMENT_A, *u256(KEY_1)], "caller is zero", caller=0
    )


def test_owner_rotates_key(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    result = vm.call(registry, "rotate_key", u256(KEY_2), caller_address=ALICE)
    assert result.events == [
        Event(
            from_address=registry,
            keys=[get_selector_from_name("KeyRotated"), ALICE],
            data=[*u256(KEY_1), *u256(KEY_2)],
        )
    ]
    assert from_u256(*vm.view(registry, "get_key", [ALICE])) == KEY_2
    # A key once used is burnt, even by its former owner.
    expect_revert(vm, registry, "rotate_key", u256(KEY_1), "key already used", caller=ALICE)
    expect_revert(
        vm, registry, "register", [COMMITMENT_B, *u256(KEY_1)], "key already used", caller=BOB
    )


def test_owner_revokes_key_and_stays_human(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    result = vm.call(registry, "revoke_key", [], caller_address=ALICE)
    assert result.events == [
        Event(
            from_address=registry,
            keys=[get_selector_from_name("KeyRevoked"), ALICE],
            data=u256(KEY_1),
        )
    ]
    assert vm.view(registry, "get_key", [ALICE]) == [0, 0]
    assert vm.view(registry, "is_human", [ALICE]) == [1]
    expect_revert(vm, registry, "revoke_key", [], "key already revoked", caller=ALICE)
    # Rotation is the way back to a usable key.
    vm.call(registry, "rotate_key", u256(KEY_3), caller_address=ALICE)
    assert from_u256(*vm.view(registry, "get_key", [ALICE])) == KEY_3


def test_only_registered_accounts_rotate_or_revoke(vm: CairoVM, registry: int) -> None:
    register(vm, registry, ALICE, COMMITMENT_A, KEY_1)
    expect_revert(vm, registry, "rotate_key", u256(KEY_2), "not registered", caller=BOB)
    expect_revert(vm, registry, "revoke_key", [], "not registered", caller=BOB)
    expect_revert(vm, registry, "rotate_key", [0, 0], "zero key", caller=ALICE)
    assert from_u256(*vm.view(registry, "get_key", [ALICE])) == KEY_1
