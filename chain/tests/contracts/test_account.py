"""account: Stark-curve ECDSA validation and the Cairo 1 multicall, as starknet-py drives it.

Transactions are built and signed with starknet-py itself (``InvokeV3``,
``StarkCurveSigner``) and their calldata serialized the way ``Account.execute_v3``
does, then run through ``__validate__``/``__execute__`` the way a node does.
"""

from __future__ import annotations

import pytest
from starknet_py.hash.address import compute_address
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.hash.utils import message_signature
from starknet_py.net.account.account import _parse_calls
from starknet_py.net.client_models import Call, ResourceBounds, ResourceBoundsMapping
from starknet_py.net.models.transaction import InvokeV3
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.signer.stark_curve_signer import StarkCurveSigner

from chain.tests.contracts.helpers import ADMIN, class_hash, felt
from chain.vm import DEFAULT_CHAIN_ID, CairoRevert, CairoVM, Event, TxContext

KEY = KeyPair.from_private_key(0x5EC12E7)
OTHER_KEY = KeyPair.from_private_key(0xBAD5EED)
VALID = felt("VALID")
LEARNING = felt("learning")
BOUNDS = ResourceBoundsMapping(
    l1_gas=ResourceBounds(max_amount=10**6, max_price_per_unit=10**9),
    l1_data_gas=ResourceBounds(max_amount=10**6, max_price_per_unit=10**9),
    l2_gas=ResourceBounds(max_amount=10**9, max_price_per_unit=10**9),
)


@pytest.fixture
def account(vm: CairoVM) -> int:
    return vm.deploy(class_hash("account"), [KEY.public_key], salt=1).address


@pytest.fixture
def anchor(vm: CairoVM, account: int) -> int:
    address = vm.deploy(class_hash("interaction_anchor"), [ADMIN]).address
    vm.call(address, "add_operator", [account], caller_address=ADMIN)
    return address


def signed_invoke(
    vm: CairoVM, account: int, calls: list[Call], key: KeyPair = KEY
) -> tuple[InvokeV3, TxContext]:
    """A v3 invoke signed by starknet-py, and the tx info the node would expose for it."""
    tx = InvokeV3(
        version=3,
        signature=[],
        nonce=vm.get_nonce(account),
        resource_bounds=BOUNDS,
        tip=0,
        calldata=_parse_calls(1, calls),  # what Account.execute_v3 sends to a Cairo 1 account
        sender_address=account,
    )
    signature = StarkCurveSigner(account, key, DEFAULT_CHAIN_ID).sign_transaction(tx)
    context = TxContext(
        account_address=account,
        transaction_hash=tx.calculate_hash(DEFAULT_CHAIN_ID),
        signature=signature,
        nonce=tx.nonce,
        version=3,
    )
    return tx, context


def test_address_matches_starknet_py(vm: CairoVM, account: int) -> None:
    assert account == compute_address(
        salt=1,
        class_hash=class_hash("account"),
        constructor_calldata=[KEY.public_key],
        deployer_address=0,
    )
    assert vm.view(account, "get_public_key") == [KEY.public_key]


def test_valid_signature_passes_validate(vm: CairoVM, account: int, anchor: int) -> None:
    calls = [Call(anchor, get_selector_from_name("anchor_batch"), [1, 0xAB, 4, LEARNING])]
    tx, context = signed_invoke(vm, account, calls)
    result = vm.call(account, "__validate__", tx.calldata, tx=context, validate=True)
    assert result.retdata == [VALID]
    assert result.storage_diff == {}


def test_wrong_signature_fails_validate(vm: CairoVM, account: int, anchor: int) -> None:
    calls = [Call(anchor, get_selector_from_name("anchor_batch"), [1, 0xAB, 4, LEARNING])]
    tx, context = signed_invoke(vm, account, calls, key=OTHER_KEY)
    with pytest.raises(CairoRevert) as info:
        vm.call(account, "__validate__", tx.calldata, tx=context, validate=True)
    assert info.value.reason == "Account: invalid signature"

    # A correct signature over another transaction hash fails as well.
    _, good = signed_invoke(vm, account, calls)
    tampered = TxContext(
        account_address=account,
        transaction_hash=good.transaction_hash + 1,
        signature=good.signature,
        nonce=good.nonce,
    )
    with pytest.raises(CairoRevert, match="Account: invalid signature"):
        vm.call(account, "__validate__", tx.calldata, tx=tampered, validate=True)


@pytest.mark.parametrize("signature", [[], [1], [1, 2, 3]])
def test_malformed_signature_fails_validate(
    vm: CairoVM, account: int, signature: list[int]
) -> None:
    context = TxContext(account_address=account, transaction_hash=0x1234, signature=signature)
    with pytest.raises(CairoRevert, match="Account: invalid signature"):
        vm.call(account, "__validate__", [0], tx=context, validate=True)


def test_execute_runs_the_calls(vm: CairoVM, account: int, anchor: int) -> None:
    calls = [
        Call(anchor, get_selector_from_name("anchor_batch"), [1, 0xAB, 4, LEARNING]),
        Call(anchor, get_selector_from_name("anchor_record"), [0xCD]),
        Call(anchor, get_selector_from_name("batch_count"), []),
    ]
    tx, context = signed_invoke(vm, account, calls)
    vm.call(account, "__validate__", tx.calldata, tx=context, validate=True)
    result = vm.call(account, "__execute__", tx.calldata, tx=context)
    # Array<Span<felt252>>: 3 results; two empty, then batch_count's [1].
    assert result.retdata == [3, 0, 0, 1, 1]
    assert result.events == [
        Event(
            from_address=anchor,
            keys=[get_selector_from_name("BatchAnchored"), 1, 0xAB],
            data=[4, LEARNING, account],
        ),
        Event(
            from_address=anchor,
            keys=[get_selector_from_name("RecordAnchored"), account, 0xCD],
            data=[],
        ),
    ]
    assert vm.view(anchor, "get_batch", [1])[3] == account


def test_panic_in_a_call_reverts_everything_with_its_reason(
    vm: CairoVM, account: int, anchor: int
) -> None:
    calls = [
        Call(anchor, get_selector_from_name("anchor_record"), [0xCD]),
        Call(anchor, get_selector_from_name("anchor_batch"), [1, 0, 4, LEARNING]),
    ]
    tx, context = signed_invoke(vm, account, calls)
    before = vm.state.to_json()
    with pytest.raises(CairoRevert) as info:
        vm.call(account, "__execute__", tx.calldata, tx=context)
    assert info.value.reason == "empty root"
    assert info.value.panic_data == [felt("empty root")]
    # The first call's record is rolled back with the rest.
    assert vm.state.to_json() == before


def test_execute_rejects_non_protocol_caller(vm: CairoVM, account: int, anchor: int) -> None:
    calls = [Call(anchor, get_selector_from_name("anchor_record"), [0xCD])]
    tx, context = signed_invoke(vm, account, calls)
    with pytest.raises(CairoRevert) as info:
        vm.call(account, "__execute__", tx.calldata, caller_address=anchor, tx=context)
    assert info.value.reason == "Account: invalid caller"


def test_execute_rejects_version_zero(vm: CairoVM, account: int) -> None:
    with pytest.raises(CairoRevert, match="Account: invalid tx version"):
        vm.call(account, "__execute__", [0], tx=TxContext(account_address=account, version=0))


def test_is_valid_signature(vm: CairoVM, account: int) -> None:
    message = 0x0A55E55
    r, s = message_signature(message, KEY.private_key)
    assert vm.view(account, "is_valid_signature", [message, 2, r, s]) == [VALID]
    assert vm.view(account, "is_valid_signature", [message + 1, 2, r, s]) == [0]
    assert vm.view(account, "is_valid_signature", [message, 1, r]) == [0]


def test_validate_declare_and_deploy(vm: CairoVM, account: int) -> None:
    tx_hash = 0xDEC1
    context = TxContext(
        account_address=account,
        transaction_hash=tx_hash,
        signature=list(message_signature(tx_hash, KEY.private_key)),
    )
    declare = vm.call(
        account, "__validate_declare__", [class_hash("governance")], tx=context, validate=True
    )
    assert declare.retdata == [VALID]
    deploy = vm.call(
        account,
        "__validate_deploy__",
        [class_hash("account"), 1, KEY.public_key],
        tx=context,
        validate=True,
    )
    assert deploy.retdata == [VALID]
    bad = TxContext(account_address=account, transaction_hash=tx_hash + 1, signature=[1, 2])
    with pytest.raises(CairoRevert, match="Account: invalid signature"):
        vm.call(account, "__validate_declare__", [0], tx=bad, validate=True)


def test_public_key_rotation_only_through_own_execute(vm: CairoVM, account: int) -> None:
    new_key = OTHER_KEY.public_key
    with pytest.raises(CairoRevert, match="Account: unauthorized"):
        vm.call(account, "set_public_key", [new_key], caller_address=ADMIN)

    calls = [Call(account, get_selector_from_name("set_public_key"), [new_key])]
    tx, context = signed_invoke(vm, account, calls)
    result = vm.call(account, "__execute__", tx.calldata, tx=context)
    assert result.events == [
        Event(
            from_address=account,
            keys=[get_selector_from_name("PublicKeyChanged")],
            data=[KEY.public_key, new_key],
        )
    ]
    assert vm.view(account, "get_public_key") == [new_key]
    # The old key no longer validates; the new one does.
    vm.increment_nonce(account)
    tx, old_signed = signed_invoke(vm, account, calls)
    with pytest.raises(CairoRevert, match="Account: invalid signature"):
        vm.call(account, "__validate__", tx.calldata, tx=old_signed, validate=True)
    tx, new_signed = signed_invoke(vm, account, calls, key=OTHER_KEY)
    assert vm.call(account, "__validate__", tx.calldata, tx=new_signed, validate=True).retdata == [
        VALID
    ]


def test_constructor_rejects_zero_key(vm: CairoVM) -> None:
    with pytest.raises(CairoRevert, match="Account: zero public key"):
        vm.deploy(class_hash("account"), [0])


def test_account_registers_and_votes_through_nested_calls(vm: CairoVM, account: int) -> None:
    # account -> governance -> registry: the registry sees the account as the voter.
    registry = vm.deploy(class_hash("humanity_registry"), []).address
    governance = vm.deploy(class_hash("governance"), [registry]).address
    start = vm.block.timestamp
    calls = [
        Call(registry, get_selector_from_name("register"), [0xC0, 0xE0, 0]),
        Call(
            governance,
            get_selector_from_name("create_proposal"),
            [0x3E7A, 2, start, start + 100, 1],
        ),
        Call(governance, get_selector_from_name("cast_vote"), [1, 1]),
    ]
    tx, context = signed_invoke(vm, account, calls)
    assert vm.call(account, "__validate__", tx.calldata, tx=context, validate=True).retdata == [
        VALID
    ]
    result = vm.call(account, "__execute__", tx.calldata, tx=context)
    assert [e.from_address for e in result.events] == [registry, governance, governance]
    assert vm.view(governance, "has_voted", [1, account]) == [1]
    assert vm.view(governance, "get_votes", [1, 1]) == [1]
