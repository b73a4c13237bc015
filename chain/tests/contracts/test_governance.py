"""governance: proposals, one-human-one-vote through the registry, finalization."""

from __future__ import annotations

from dataclasses import replace

import pytest
from starknet_py.hash.selector import get_selector_from_name

from chain.tests.contracts.conftest import GENESIS_TIME
from chain.tests.contracts.helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    class_hash,
    expect_revert,
    felt,
    u256,
)
from chain.vm import CairoRevert, CairoVM, Event

START = GENESIS_TIME + 100
END = GENESIS_TIME + 1_000
METADATA = 0x3E7A


@pytest.fixture
def registry(vm: CairoVM) -> int:
    address = vm.deploy(class_hash("humanity_registry"), []).address
    for n, account in enumerate((ALICE, BOB, DAVE), start=1):
        vm.call(address, "register", [0xC0 + n, *u256(0xE0 + n)], caller_address=account)
    return address  # CAROL is not a registered human


@pytest.fixture
def governance(vm: CairoVM, registry: int) -> int:
    return vm.deploy(class_hash("governance"), [registry]).address


def at(vm: CairoVM, timestamp: int) -> None:
    vm.block = replace(vm.block, timestamp=timestamp)


def create(vm: CairoVM, governance: int, options: int = 3, quorum: int = 2) -> int:
    result = vm.call(
        governance,
        "create_proposal",
        [METADATA, options, START, END, quorum],
        caller_address=ALICE,
    )
    return result.retdata[0]


def vote(vm: CairoVM, governance: int, proposal: int, voter: int, option: int) -> None:
    vm.call(governance, "cast_vote", [proposal, option], caller_address=voter)


def test_create_proposal_emits_and_stores(vm: CairoVM, governance: int) -> None:
    result = vm.call(
        governance, "create_proposal", [METADATA, 3, START, END, 2], caller_address=ALICE
    )
    assert result.retdata == [1]
    assert result.events == [
        Event(
            from_address=governance,
            keys=[get_selector_from_name("ProposalCreated"), 1, ALICE],
            data=[METADATA, 3, START, END, 2],
        )
    ]
    # creator, metadata, options, start, end, quorum, total, finalized, outcome, winner
    assert vm.view(governance, "get_proposal", [1]) == [
        ALICE, METADATA, 3, START, END, 2, 0, 0, 0, 0
    ]  # fmt: skip
    assert vm.view(governance, "proposal_count") == [1]
    assert vm.view(governance, "get_status", [1]) == [felt("pending")]
    assert create(vm, governance) == 2


def test_create_proposal_validation(vm: CairoVM, governance: int) -> None:
    def bad(calldata: list[int], reason: str) -> None:
        expect_revert(vm, governance, "create_proposal", calldata, reason, caller=ALICE)

    bad([METADATA, 1, START, END, 1], "too few options")
    bad([METADATA, 33, START, END, 1], "too many options")
    bad([METADATA, 2, END, START, 1], "invalid voting window")
    bad([METADATA, 2, START, START, 1], "invalid voting window")
    bad([METADATA, 2, GENESIS_TIME - 10, GENESIS_TIME, 1], "voting window in the past")


def test_human_votes_and_result_succeeds(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance)
    at(vm, START)
    assert vm.view(governance, "get_status", [proposal]) == [felt("active")]
    result = vm.call(governance, "cast_vote", [proposal, 2], caller_address=ALICE)
    assert result.events == [
        Event(
            from_address=governance,
            keys=[get_selector_from_name("VoteCast"), proposal, ALICE],
            data=[2],
        )
    ]
    vote(vm, governance, proposal, BOB, 2)
    vote(vm, governance, proposal, DAVE, 0)
    assert vm.view(governance, "get_votes", [proposal, 2]) == [2]
    assert vm.view(governance, "get_votes", [proposal, 0]) == [1]
    assert vm.view(governance, "has_voted", [proposal, BOB]) == [1]
    assert vm.view(governance, "has_voted", [proposal, CAROL]) == [0]

    at(vm, END)
    assert vm.view(governance, "get_status", [proposal]) == [felt("ended")]
    finalized = vm.call(governance, "finalize", [proposal], caller_address=CAROL)
    assert finalized.retdata == [felt("succeeded")]
    assert finalized.events == [
        Event(
            from_address=governance,
            keys=[get_selector_from_name("ProposalFinalized"), proposal],
            data=[felt("succeeded"), 2, 3],
        )
    ]
    assert vm.view(governance, "get_status", [proposal]) == [felt("succeeded")]
    assert vm.view(governance, "get_proposal", [proposal])[6:] == [3, 1, felt("succeeded"), 2]


def test_vote_by_non_human_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance)
    at(vm, START)
    expect_revert(vm, governance, "cast_vote", [proposal, 0], "caller is not human", caller=CAROL)
    assert vm.view(governance, "get_votes", [proposal, 0]) == [0]


def test_double_vote_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance)
    at(vm, START + 1)
    vote(vm, governance, proposal, ALICE, 0)
    expect_revert(vm, governance, "cast_vote", [proposal, 1], "already voted", caller=ALICE)
    expect_revert(vm, governance, "cast_vote", [proposal, 0], "already voted", caller=ALICE)
    assert vm.view(governance, "get_proposal", [proposal])[6] == 1


def test_vote_outside_window_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance)
    at(vm, START - 1)
    expect_revert(vm, governance, "cast_vote", [proposal, 0], "voting not started", caller=ALICE)
    at(vm, END)  # the window is [start, end)
    expect_revert(vm, governance, "cast_vote", [proposal, 0], "voting closed", caller=ALICE)


def test_vote_for_unknown_option_or_proposal_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance, options=3)
    at(vm, START)
    expect_revert(vm, governance, "cast_vote", [proposal, 3], "invalid option", caller=ALICE)
    expect_revert(vm, governance, "cast_vote", [99, 0], "unknown proposal", caller=ALICE)


def test_finalize_before_end_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance)
    at(vm, END - 1)
    expect_revert(vm, governance, "finalize", [proposal], "voting still open", caller=ALICE)
    expect_revert(vm, governance, "finalize", [42], "unknown proposal", caller=ALICE)


def test_finalize_twice_is_rejected(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance, quorum=0)
    at(vm, END)
    vm.call(governance, "finalize", [proposal], caller_address=ALICE)
    expect_revert(vm, governance, "finalize", [proposal], "already finalized", caller=BOB)


def test_quorum_not_met_is_defeated(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance, quorum=3)
    at(vm, START)
    vote(vm, governance, proposal, ALICE, 1)
    vote(vm, governance, proposal, BOB, 1)
    at(vm, END + 5)
    result = vm.call(governance, "finalize", [proposal], caller_address=ALICE)
    assert result.retdata == [felt("defeated")]
    assert result.events[0].data == [felt("defeated"), 0, 2]
    assert vm.view(governance, "get_status", [proposal]) == [felt("defeated")]


def test_tie_for_first_place_is_defeated(vm: CairoVM, governance: int) -> None:
    proposal = create(vm, governance, quorum=1)
    at(vm, START)
    vote(vm, governance, proposal, ALICE, 0)
    vote(vm, governance, proposal, BOB, 2)
    at(vm, END)
    assert vm.call(governance, "finalize", [proposal]).retdata == [felt("defeated")]


def test_registry_address_is_required(vm: CairoVM) -> None:
    with pytest.raises(CairoRevert) as info:
        vm.deploy(class_hash("governance"), [0])
    assert info.value.reason == "zero registry"


def test_registry_failure_reverts_the_vote(vm: CairoVM) -> None:
    # A registry address with no contract behind it: the cross-contract call fails and
    # the whole vote reverts, leaving no ballot behind.
    governance = vm.deploy(class_hash("governance"), [0xDEAD]).address
    proposal = create(vm, governance)
    at(vm, START)
    before = vm.state.to_json()
    with pytest.raises(CairoRevert) as info:
        vm.call(governance, "cast_vote", [proposal, 0], caller_address=ALICE)
    assert "not deployed" in info.value.message
    assert vm.state.to_json() == before
