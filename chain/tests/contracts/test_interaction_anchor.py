"""interaction_anchor: operator batches, learner records, admin-managed operator set."""

from __future__ import annotations

import pytest
from starknet_py.hash.selector import get_selector_from_name

from chain.tests.contracts.helpers import (
    ADMIN,
    ALICE,
    BOB,
    OPERATOR,
    class_hash,
    expect_revert,
    felt,
)
from chain.vm import BlockContext, CairoRevert, CairoVM, Event

LEARNING = felt("learning")
ROOT = 0x5EED_0F_7EAF


@pytest.fixture
def anchor(vm: CairoVM) -> int:
    address = vm.deploy(class_hash("interaction_anchor"), [ADMIN]).address
    vm.call(address, "add_operator", [OPERATOR], caller_address=ADMIN)
    return address


def anchor_batch(vm: CairoVM, anchor: int, batch_id: int, root: int, leaves: int = 3) -> None:
    vm.call(anchor, "anchor_batch", [batch_id, root, leaves, LEARNING], caller_address=OPERATOR)


def test_constructor_rejects_zero_admin(vm: CairoVM) -> None:
    with pytest.raises(CairoRevert) as info:
        vm.deploy(class_hash("interaction_anchor"), [0])
    assert info.value.reason == "zero admin"


def test_operator_anchors_batch_with_block_data_and_event(vm: CairoVM, anchor: int) -> None:
    vm.block = BlockContext(number=42, timestamp=1_700_000_123)
    result = vm.call(anchor, "anchor_batch", [7, ROOT, 128, LEARNING], caller_address=OPERATOR)
    assert result.events == [
        Event(
            from_address=anchor,
            keys=[get_selector_from_name("BatchAnchored"), 7, ROOT],
            data=[128, LEARNING, OPERATOR],
        )
    ]
    # Batch struct: root, leaf_count, domain, anchored_by, block_number, block_timestamp.
    assert vm.view(anchor, "get_batch", [7]) == [ROOT, 128, LEARNING, OPERATOR, 42, 1_700_000_123]
    assert vm.view(anchor, "is_root_anchored", [ROOT]) == [1]
    assert vm.view(anchor, "is_root_anchored", [ROOT + 1]) == [0]
    assert vm.view(anchor, "get_batch_id_by_root", [ROOT]) == [7]
    assert vm.view(anchor, "batch_count") == [1]
    assert result.storage_diff.keys() == {anchor}


@pytest.mark.parametrize("domain", ["learning", "reputation", "marketplace", "governance"])
def test_every_known_domain_is_accepted(vm: CairoVM, anchor: int, domain: str) -> None:
    vm.call(anchor, "anchor_batch", [1, ROOT, 1, felt(domain)], caller_address=OPERATOR)
    assert vm.view(anchor, "get_batch", [1])[2] == felt(domain)


def test_unauthorized_caller_cannot_anchor(vm: CairoVM, anchor: int) -> None:
    expect_revert(
        vm, anchor, "anchor_batch", [1, ROOT, 3, LEARNING], "caller is not operator", caller=ALICE
    )
    # The admin manages operators but is not one.
    expect_revert(
        vm, anchor, "anchor_batch", [1, ROOT, 3, LEARNING], "caller is not operator", caller=ADMIN
    )


def test_duplicate_batch_id_is_rejected(vm: CairoVM, anchor: int) -> None:
    anchor_batch(vm, anchor, 1, ROOT)
    expect_revert(
        vm,
        anchor,
        "anchor_batch",
        [1, ROOT + 1, 3, LEARNING],
        "batch id already used",
        caller=OPERATOR,
    )


def test_root_is_anchored_once(vm: CairoVM, anchor: int) -> None:
    anchor_batch(vm, anchor, 1, ROOT)
    expect_revert(
        vm,
        anchor,
        "anchor_batch",
        [2, ROOT, 3, LEARNING],
        "root already anchored",
        caller=OPERATOR,
    )


def test_empty_root_zero_leaves_and_unknown_domain_are_rejected(vm: CairoVM, anchor: int) -> None:
    expect_revert(vm, anchor, "anchor_batch", [1, 0, 3, LEARNING], "empty root", caller=OPERATOR)
    expect_revert(
        vm, anchor, "anchor_batch", [1, ROOT, 0, LEARNING], "zero leaf count", caller=OPERATOR
    )
    expect_revert(
        vm,
        anchor,
        "anchor_batch",
        [1, ROOT, 3, felt("finance")],
        "unknown domain",
        caller=OPERATOR,
    )
    assert vm.view(anchor, "batch_count") == [0]


def test_leaf_count_must_fit_u32(vm: CairoVM, anchor: int) -> None:
    with pytest.raises(CairoRevert) as info:
        vm.call(anchor, "anchor_batch", [1, ROOT, 2**32, LEARNING], caller_address=OPERATOR)
    # Cairo 2.1's ABI wrapper reports any argument that fails to deserialize this way.
    assert info.value.reason == "Input too short for arguments"


def test_unknown_batch_and_root_reads_panic(vm: CairoVM, anchor: int) -> None:
    with pytest.raises(CairoRevert, match="unknown batch"):
        vm.view(anchor, "get_batch", [99])
    with pytest.raises(CairoRevert, match="unknown root"):
        vm.view(anchor, "get_batch_id_by_root", [ROOT])


def test_admin_manages_operator_set(vm: CairoVM, anchor: int) -> None:
    added = vm.call(anchor, "add_operator", [BOB], caller_address=ADMIN)
    assert added.events == [
        Event(from_address=anchor, keys=[get_selector_from_name("OperatorAdded"), BOB], data=[])
    ]
    assert vm.view(anchor, "is_operator", [BOB]) == [1]
    anchor_batch(vm, anchor, 1, ROOT)

    removed = vm.call(anchor, "remove_operator", [OPERATOR], caller_address=ADMIN)
    assert removed.events[0].keys == [get_selector_from_name("OperatorRemoved"), OPERATOR]
    assert vm.view(anchor, "is_operator", [OPERATOR]) == [0]
    expect_revert(
        vm,
        anchor,
        "anchor_batch",
        [2, ROOT + 1, 3, LEARNING],
        "caller is not operator",
        caller=OPERATOR,
    )
    vm.call(anchor, "anchor_batch", [2, ROOT + 1, 3, LEARNING], caller_address=BOB)
    assert vm.view(anchor, "batch_count") == [2]


def test_only_admin_manages_operators(vm: CairoVM, anchor: int) -> None:
    expect_revert(vm, anchor, "add_operator", [BOB], "caller is not admin", caller=OPERATOR)
    expect_revert(vm, anchor, "remove_operator", [OPERATOR], "caller is not admin", caller=BOB)
    expect_revert(vm, anchor, "transfer_admin", [BOB], "caller is not admin", caller=OPERATOR)


def test_operator_set_edge_cases(vm: CairoVM, anchor: int) -> None:
    expect_revert(vm, anchor, "add_operator", [OPERATOR], "operator already added", caller=ADMIN)
    expect_revert(vm, anchor, "remove_operator", [BOB], "not an operator", caller=ADMIN)
    expect_revert(vm, anchor, "add_operator", [0], "zero operator", caller=ADMIN)


def test_transfer_admin(vm: CairoVM, anchor: int) -> None:
    result = vm.call(anchor, "transfer_admin", [BOB], caller_address=ADMIN)
    assert result.events[0].keys == [get_selector_from_name("AdminTransferred"), ADMIN, BOB]
    assert vm.view(anchor, "get_admin") == [BOB]
    expect_revert(vm, anchor, "add_operator", [ALICE], "caller is not admin", caller=ADMIN)
    vm.call(anchor, "add_operator", [ALICE], caller_address=BOB)


def test_learner_anchors_own_record(vm: CairoVM, anchor: int) -> None:
    vm.block = BlockContext(number=9, timestamp=1_700_000_500)
    record = 0xFEED
    result = vm.call(anchor, "anchor_record", [record], caller_address=ALICE)
    assert result.events == [
        Event(
            from_address=anchor,
            keys=[get_selector_from_name("RecordAnchored"), ALICE, record],
            data=[],
        )
    ]
    assert vm.view(anchor, "get_record", [record]) == [ALICE, 9, 1_700_000_500]
    assert vm.view(anchor, "is_record_anchored", [record]) == [1]
    assert vm.view(anchor, "record_count") == [1]
    # Records and batch roots are separate namespaces.
    assert vm.view(anchor, "is_root_anchored", [record]) == [0]


def test_record_rejections(vm: CairoVM, anchor: int) -> None:
    vm.call(anchor, "anchor_record", [0xFEED], caller_address=ALICE)
    expect_revert(vm, anchor, "anchor_record", [0xFEED], "record already anchored", caller=BOB)
    expect_revert(vm, anchor, "anchor_record", [0], "empty record", caller=ALICE)
    expect_revert(vm, anchor, "anchor_record", [0xBEEF], "caller is zero", caller=0)
    with pytest.raises(CairoRevert, match="unknown record"):
        vm.view(anchor, "get_record", [0xBEEF])
