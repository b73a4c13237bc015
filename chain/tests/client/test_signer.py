"""FastStarkSigner signs exactly as starknet-py's default (crypto-cpp) signer."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starknet_py.constants import EC_ORDER
from starknet_py.hash.utils import message_signature, private_to_stark_key
from starknet_py.net.client_models import ResourceBoundsMapping
from starknet_py.net.models.transaction import InvokeV3
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.signer.stark_curve_signer import StarkCurveSigner
from starkware.crypto.signature.signature import EC_GEN, verify

from chain.client.signer import (
    GENERATOR,
    FastStarkSigner,
    fast_message_signature,
    generator_multiple,
)

KEYS = st.integers(min_value=1, max_value=EC_ORDER - 1)
HASHES = st.integers(min_value=1, max_value=2**251 - 1)


def test_generator_is_the_stark_generator() -> None:
    assert tuple(EC_GEN) == GENERATOR


@settings(max_examples=12, deadline=None)
@given(priv_key=KEYS, msg_hash=HASHES)
def test_same_signature_as_starknet_py(priv_key: int, msg_hash: int) -> None:
    fast = fast_message_signature(msg_hash, priv_key)
    assert fast == tuple(message_signature(msg_hash, priv_key))
    assert verify(msg_hash, fast[0], fast[1], private_to_stark_key(priv_key))


@pytest.mark.parametrize(
    ("priv_key", "msg_hash"),
    [
        (1, 1),
        (EC_ORDER - 1, 2**251 - 1),
        (2, 2**248 + 5),  # 249 bits: crypto-cpp pads the hash for k (one nibble short)
        (3, 2**251 - 2**250),
        (0x1234, 1),
    ],
)
def test_edge_inputs(priv_key: int, msg_hash: int) -> None:
    assert fast_message_signature(msg_hash, priv_key) == tuple(
        message_signature(msg_hash, priv_key)
    )


def _outcome(sign: object, msg_hash: int, priv_key: int) -> object:
    try:
        return tuple(sign(msg_hash, priv_key))  # type: ignore[operator]
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize(
    ("priv_key", "msg_hash"), [(1, 0), (1, 2**251), (0, 5), (EC_ORDER, 5), (2, 2**252)]
)
def test_out_of_range_inputs_behave_like_the_reference(priv_key: int, msg_hash: int) -> None:
    assert _outcome(fast_message_signature, msg_hash, priv_key) == _outcome(
        message_signature, msg_hash, priv_key
    )


@settings(max_examples=30, deadline=None)
@given(KEYS)
def test_generator_multiples_are_public_keys(priv_key: int) -> None:
    point = generator_multiple(priv_key)
    assert point is not None and point[0] == private_to_stark_key(priv_key)


def test_infinity_and_order() -> None:
    assert generator_multiple(0) is None
    assert generator_multiple(EC_ORDER) is None
    assert generator_multiple(EC_ORDER + 1) == GENERATOR


def test_signer_signs_transactions_like_starknet_py() -> None:
    key_pair = KeyPair.from_private_key(0xC0FFEE)
    tx = InvokeV3(
        calldata=[1, 2, 3],
        resource_bounds=ResourceBoundsMapping.init_with_zeros(),
        signature=[],
        nonce=4,
        sender_address=0x123,
        version=3,
        tip=0,
    )
    chain_id = int.from_bytes(b"KEIKOCHAIN_DEV", "big")
    fast = FastStarkSigner(0x123, key_pair, chain_id)
    reference = StarkCurveSigner(0x123, key_pair, chain_id)
    assert fast.sign_transaction(tx) == reference.sign_transaction(tx)
