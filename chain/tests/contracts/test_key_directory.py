"""interaction_anchor's key directory: operators bind signing keys to their holders."""

from __future__ import annotations

import pytest
from starknet_py.hash.selector import get_selector_from_name

from chain.tests.contracts.helpers import (
    ADMIN,
    ALICE,
    OPERATOR,
    class_hash,
    expect_revert,
    felt,
    u256,
)
from chain.vm import BlockContext, CairoVM, Event

KEY_A = int.from_bytes(bytes(range(1, 33)), "big")  # uses the high half of the u256
KEY_B = 0xB0B
TUTOR = 0x7070  # subject felts (commitments to a holder's id)
LEARNER = 0x1EA2
CUSTODIAL = felt("custodial")
DEVICE = felt("device")
SERVICE = felt("service")


@pytest.fixture
def anchor(vm: CairoVM) -> int:
    address = vm.deploy(class_hash("interaction_anchor"), [ADMIN]).address
    vm.call(address, "add_operator", [OPERATOR], caller_address=ADMIN)
    return address


def registrations(*entries: tuple[int, int, int]) -> list[int]:
    """Calldata of an Array<KeyRegistration>: length, then (key low, key high, subject, kind)."""
    out = [len(entries)]
    for key, subject, kind in entries:
        out += [*u256(key), subject, kind]
    return out


def test_operator_binds_keys_with_block_and_events(vm: CairoVM, anchor: int) -> None:
    vm.block = BlockContext(number=9, timestamp=1_700_000_000)
    result = vm.call(
        anchor,
        "register_keys",
        registrations((KEY_A, TUTOR, CUSTODIAL), (KEY_B, LEARNER, DEVICE)),
        caller_address=OPERATOR,
    )
    selector = get_selector_from_name("KeyRegistered")
    assert result.events == [
        Event(anchor, [selector, TUTOR], [*u256(KEY_A), CUSTODIAL, OPERATOR]),
        Event(anchor, [selector, LEARNER], [*u256(KEY_B), DEVICE, OPERATOR]),
    ]
    # KeyBinding: subject, kind, registered_by, registered_block, revoked, revoked_block.
    assert vm.view(anchor, "get_key", u256(KEY_A)) == [TUTOR, CUSTODIAL, OPERATOR, 9, 0, 0]
    assert vm.view(anchor, "get_key", u256(KEY_B)) == [LEARNER, DEVICE, OPERATOR, 9, 0, 0]
    assert vm.view(anchor, "get_key", u256(0xC0FFEE)) == [0, 0, 0, 0, 0, 0]  # unknown
    assert vm.view(anchor, "key_count") == [2]


def test_a_retried_binding_is_a_no_op(vm: CairoVM, anchor: int) -> None:
    calldata = registrations((KEY_A, TUTOR, SERVICE))
    vm.call(anchor, "register_keys", calldata, caller_address=OPERATOR)
    vm.block = BlockContext(number=20, timestamp=1_700_000_100)
    again = vm.call(anchor, "register_keys", calldata, caller_address=OPERATOR)
    assert again.events == []
    assert vm.view(anchor, "get_key", u256(KEY_A))[3] == 1  # still the first block
    assert vm.view(anchor, "key_count") == [1]


def test_a_key_is_never_rebound(vm: CairoVM, anchor: int) -> None:
    vm.call(
        anchor, "register_keys", registrations((KEY_A, TUTOR, CUSTODIAL)), caller_address=OPERATOR
    )
    for entry, reason in (
        ((KEY_A, LEARNER, CUSTODIAL), "key bound to another holder"),
        ((KEY_A, TUTOR, DEVICE), "key bound with another kind"),
    ):
        # A whole list fails with one bad entry: KEY_B is not bound either.
        expect_revert(
            vm,
            anchor,
            "register_keys",
            registrations((KEY_B, TUTOR, CUSTODIAL), entry),
            reason,
            caller=OPERATOR,
        )
    assert vm.view(anchor, "get_key", u256(KEY_B))[0] == 0


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ((0, TUTOR, CUSTODIAL), "zero key"),
        ((KEY_A, 0, CUSTODIAL), "zero subject"),
        ((KEY_A, TUTOR, felt("admin")), "unknown key kind"),
    ],
)
def test_bad_registrations_are_refused(
    vm: CairoVM, anchor: int, entry: tuple[int, int, int], reason: str
) -> None:
    expect_revert(vm, anchor, "register_keys", registrations(entry), reason, caller=OPERATOR)


def test_only_operators_bind_and_revoke(vm: CairoVM, anchor: int) -> None:
    calldata = registrations((KEY_A, TUTOR, CUSTODIAL))
    for caller in (ALICE, ADMIN):
        expect_revert(
            vm, anchor, "register_keys", calldata, "caller is not operator", caller=caller
        )
    vm.call(anchor, "register_keys", calldata, caller_address=OPERATOR)
    expect_revert(vm, anchor, "revoke_key", u256(KEY_A), "caller is not operator", caller=ALICE)


def test_revocation_keeps_the_binding_and_records_when(vm: CairoVM, anchor: int) -> None:
    vm.call(
        anchor, "register_keys", registrations((KEY_A, TUTOR, CUSTODIAL)), caller_address=OPERATOR
    )
    expect_revert(vm, anchor, "revoke_key", u256(KEY_B), "unknown key", caller=OPERATOR)
    vm.block = BlockContext(number=30, timestamp=1_700_000_300)
    result = vm.call(anchor, "revoke_key", u256(KEY_A), caller_address=OPERATOR)
    assert result.events == [
        Event(anchor, [get_selector_from_name("KeyRevoked"), TUTOR], [*u256(KEY_A), OPERATOR])
    ]
    assert vm.view(anchor, "get_key", u256(KEY_A)) == [TUTOR, CUSTODIAL, OPERATOR, 1, 1, 30]
    expect_revert(vm, anchor, "revoke_key", u256(KEY_A), "key already revoked", caller=OPERATOR)
    # A revoked key is still bound: it cannot be handed to someone else.
    expect_revert(
        vm,
        anchor,
        "register_keys",
        registrations((KEY_A, LEARNER, CUSTODIAL)),
        "key bound to another holder",
        caller=OPERATOR,
    )
