"""chain.vm: the executor the dev node builds on (atomicity, diffs, persistence, errors)."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starknet_py.cairo.felt import encode_shortstring
from starkware.crypto.signature.signature import FIELD_PRIME

from chain.tests.contracts.helpers import (
    ADMIN,
    ALICE,
    CLASSES,
    CONTRACTS,
    OPERATOR,
    class_hash,
    felt,
)
from chain.vm import CairoRevert, CairoVM, ChainState, TxContext, decode_panic

LEARNING = felt("learning")


@pytest.fixture
def anchor(vm: CairoVM) -> int:
    address = vm.deploy(class_hash("interaction_anchor"), [ADMIN]).address
    vm.call(address, "add_operator", [OPERATOR], caller_address=ADMIN)
    return address


def test_declared_hashes_match_build_manifest(declared: CairoVM) -> None:
    # classes.json comes from starknet-py's hash functions (what clients compute when
    # they declare); the VM recomputes both hashes with cairo-lang.
    for name in CONTRACTS:
        h = int(CLASSES[name]["class_hash"], 16)
        assert h in declared.state.classes
        assert declared.state.compiled_class_hashes[h] == int(
            CLASSES[name]["compiled_class_hash"], 16
        )


def test_storage_diff_lists_only_changed_values(vm: CairoVM, anchor: int) -> None:
    first = vm.call(anchor, "anchor_batch", [1, 0xAB, 2, LEARNING], caller_address=OPERATOR)
    assert list(first.storage_diff) == [anchor]
    for key, value in first.storage_diff[anchor].items():
        assert vm.get_storage_at(anchor, key) == value
    # Removing then re-adding the operator writes the same final value for the flag, but
    # each call's diff shows its own change.
    removed = vm.call(anchor, "remove_operator", [OPERATOR], caller_address=ADMIN)
    (flag_key,) = removed.storage_diff[anchor]
    assert removed.storage_diff[anchor][flag_key] == 0


def test_failed_call_leaves_state_unchanged(vm: CairoVM, anchor: int) -> None:
    before = vm.state.copy()
    with pytest.raises(CairoRevert) as info:
        vm.call(anchor, "anchor_batch", [1, 0, 2, LEARNING], caller_address=OPERATOR)
    assert info.value.reason == "empty root"
    assert info.value.code == "TRANSACTION_FAILED"
    assert vm.state == before


def test_view_and_uncommitted_calls_do_not_write(vm: CairoVM, anchor: int) -> None:
    before = vm.state.copy()
    result = vm.call(
        anchor, "anchor_batch", [1, 0xAB, 2, LEARNING], caller_address=OPERATOR, commit=False
    )
    assert result.storage_diff  # it would have written...
    assert result.events
    assert vm.state == before  # ...but did not
    assert vm.view(anchor, "batch_count") == [0]


def test_fork_is_independent(vm: CairoVM, anchor: int) -> None:
    fork = vm.fork()
    fork.call(anchor, "anchor_batch", [1, 0xAB, 2, LEARNING], caller_address=OPERATOR)
    assert fork.view(anchor, "batch_count") == [1]
    assert vm.view(anchor, "batch_count") == [0]


def test_state_round_trips_through_json(vm: CairoVM, anchor: int) -> None:
    vm.call(anchor, "anchor_batch", [1, 0xAB, 2, LEARNING], caller_address=OPERATOR)
    vm.increment_nonce(ALICE)
    restored = CairoVM(ChainState.from_json(json.loads(json.dumps(vm.state.to_json()))))
    assert restored.state == vm.state
    assert restored.view(anchor, "get_batch", [1])[:3] == [0xAB, 2, LEARNING]
    assert restored.get_nonce(ALICE) == 1
    restored.call(anchor, "anchor_batch", [2, 0xAC, 2, LEARNING], caller_address=OPERATOR)
    assert restored.view(anchor, "batch_count") == [2]


def test_nonces_are_the_callers_business(vm: CairoVM) -> None:
    assert vm.get_nonce(ALICE) == 0
    assert vm.increment_nonce(ALICE) == 1
    assert vm.increment_nonce(ALICE) == 2
    assert vm.state.nonces == {ALICE: 2}


def test_deploy_errors(vm: CairoVM, anchor: int) -> None:
    with pytest.raises(CairoRevert) as undeclared:
        vm.deploy(0x1234, [])
    assert undeclared.value.code == "UNDECLARED_CLASS"
    with pytest.raises(CairoRevert) as taken:
        vm.deploy(class_hash("interaction_anchor"), [ADMIN])
    assert taken.value.code == "CONTRACT_ADDRESS_UNAVAILABLE"
    with pytest.raises(CairoRevert) as calldata:
        vm.deploy(class_hash("humanity_registry"), [1])
    assert calldata.value.code == "INVALID_CALLDATA"
    assert vm.get_class_hash_at(anchor) == class_hash("interaction_anchor")


def test_call_errors_are_typed(vm: CairoVM, anchor: int) -> None:
    with pytest.raises(CairoRevert) as missing:
        vm.call(0xDEAD, "batch_count")
    assert missing.value.code == "UNINITIALIZED_CONTRACT"
    with pytest.raises(CairoRevert) as no_entry:
        vm.call(anchor, "no_such_function")
    assert no_entry.value.code == "ENTRY_POINT_NOT_FOUND_IN_CONTRACT"


def test_view_by_selector(vm: CairoVM, anchor: int) -> None:
    from starknet_py.hash.selector import get_selector_from_name

    assert vm.view(anchor, get_selector_from_name("get_admin")) == [ADMIN]


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=31))
def test_decode_panic_reads_short_strings(text: str) -> None:
    if text:
        assert decode_panic([encode_shortstring(text)]) == text


def test_decode_panic_keeps_non_text_felts_hex() -> None:
    assert decode_panic([felt("bad"), 0x1F, 0]) == "bad, 0x1f, 0x0"


@pytest.mark.parametrize("bad", [-1, FIELD_PRIME, 2**300])
def test_values_that_are_not_felts_are_rejected(vm: CairoVM, anchor: int, bad: int) -> None:
    # cairo-lang would silently reduce them modulo P and run on another value.
    before = vm.state.copy()
    with pytest.raises(CairoRevert) as info:
        vm.call(anchor, "add_operator", [bad], caller_address=ADMIN)
    assert info.value.code == "OUT_OF_RANGE_FELT"
    with pytest.raises(CairoRevert):
        vm.call(anchor, "batch_count", [], tx=TxContext(signature=[bad]))
    with pytest.raises(CairoRevert):
        vm.deploy(class_hash("interaction_anchor"), [bad])
    assert vm.state == before
