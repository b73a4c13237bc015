"""chain.fast_ecdsa computes what cairo-lang's originals compute, failures included."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starkware.crypto.signature.signature import ALPHA, EC_GEN, FIELD_PRIME
from starkware.python.math_utils import ec_mult

from chain import fast_ecdsa
from chain.fast_ecdsa import ORIGINAL_EC_OP_IMPL, ORIGINAL_SQRT, fast_ec_op_impl, fast_sqrt
from chain.tests.contracts.helpers import class_hash
from chain.vm import CairoRevert, CairoVM, TxContext

P = FIELD_PRIME
# The originals take ~25-30 ms a call: keep example counts modest, and no deadline
# (the machine is shared).
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """The value, or the exception type and message: what a caller can observe."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # the comparison is the point
        return (type(exc).__name__, str(exc))


def point(k: int) -> tuple[int, int]:
    x, y = ec_mult(k, EC_GEN, ALPHA, P)
    return x, y


felts = st.integers(min_value=0, max_value=P - 1)
small = st.integers(min_value=1, max_value=12)
scalars = st.one_of(small, st.integers(min_value=1, max_value=2**251))
m_values = st.one_of(st.integers(min_value=0, max_value=64), st.integers(0, 2**252 - 1))


@SLOW
@given(st.one_of(felts.map(lambda r: r * r % P), felts, st.integers(-3 * P, 3 * P)))
def test_sqrt_matches_original(n: int) -> None:
    expected = outcome(ORIGINAL_SQRT, n, P)
    event(expected[0])
    assert outcome(fast_sqrt, n, P) == expected


@pytest.mark.parametrize("n", [0, 1, 4, P - 1, P, P + 4, -4, 3])
def test_sqrt_edge_cases(n: int) -> None:
    assert outcome(fast_sqrt, n, P) == outcome(ORIGINAL_SQRT, n, P)


def test_sqrt_other_moduli_use_the_original() -> None:
    assert fast_sqrt(4, 13) == ORIGINAL_SQRT(4, 13) == 2
    assert outcome(fast_sqrt, 5, 15) == outcome(ORIGINAL_SQRT, 5, 15)


@SLOW
@given(a=scalars, b=scalars, m=m_values, negate=st.booleans())
def test_ec_op_matches_original_on_curve_points(a: int, b: int, m: int, negate: bool) -> None:
    # Small multiples of one generator make the AIR's "same x" failure reachable:
    # hypothesis finds inputs where both must fail, not only inputs where both succeed.
    p_x, p_y = point(a)
    q_x, q_y = point(b)
    if negate:
        q_y = P - q_y
    args = (p_x, p_y, q_x, q_y, m, ALPHA, P, 256)
    expected = outcome(ORIGINAL_EC_OP_IMPL, *args)
    event(expected[0])  # --hypothesis-show-statistics: both outcomes are exercised
    assert outcome(fast_ec_op_impl, *args) == expected


@SLOW
@given(
    coords=st.tuples(felts, felts, felts, felts),
    m=m_values,
    alpha=st.one_of(st.just(ALPHA), felts),
    height=st.integers(min_value=0, max_value=256),
)
def test_ec_op_matches_original_on_arbitrary_inputs(
    coords: tuple[int, int, int, int], m: int, alpha: int, height: int
) -> None:
    # The formulas never use the curve equation, so even off-curve inputs agree.
    args = (*coords, m, alpha, P, height)
    expected = outcome(ORIGINAL_EC_OP_IMPL, *args)
    event(expected[0])
    assert outcome(fast_ec_op_impl, *args) == expected


def test_ec_op_reports_same_x_like_the_original() -> None:
    g_x, g_y = EC_GEN
    args = (g_x, g_y, g_x, g_y, 1, ALPHA, P, 256)
    fast, original = outcome(fast_ec_op_impl, *args), outcome(ORIGINAL_EC_OP_IMPL, *args)
    assert fast == original
    assert fast[0] == "AssertionError"
    assert "same x coordinate" in fast[1]


def test_ec_op_without_addition_returns_p_unchanged() -> None:
    args = (P + 5, 7, *EC_GEN, 0, ALPHA, P, 256)
    assert fast_ec_op_impl(*args) == ORIGINAL_EC_OP_IMPL(*args) == (P + 5, 7)


def test_install_is_idempotent_and_reversible() -> None:
    assert fast_ecdsa.is_installed()  # chain.vm installs it
    fast_ecdsa.install()
    assert fast_ecdsa.is_installed()
    fast_ecdsa.uninstall()
    try:
        assert not fast_ecdsa.is_installed()
    finally:
        fast_ecdsa.install()


def test_account_validation_identical_with_and_without() -> None:
    vm = CairoVM()
    vm.declare_build("account")
    from starknet_py.hash.utils import message_signature
    from starknet_py.net.signer.key_pair import KeyPair

    key = KeyPair.from_private_key(0xFA57)
    account = vm.deploy(class_hash("account"), [key.public_key]).address
    tx_hash = 0x7E57
    good = TxContext(
        account_address=account,
        transaction_hash=tx_hash,
        signature=list(message_signature(tx_hash, key.private_key)),
    )
    bad = TxContext(account_address=account, transaction_hash=tx_hash + 1, signature=good.signature)

    def run() -> tuple[tuple[list[int], int], str]:
        ok = vm.call(account, "__validate__", [0], tx=good, validate=True, commit=False)
        with pytest.raises(CairoRevert) as info:
            vm.call(account, "__validate__", [0], tx=bad, validate=True, commit=False)
        return (ok.retdata, ok.n_steps), info.value.reason

    fast = run()
    fast_ecdsa.uninstall()
    try:
        original = run()
    finally:
        fast_ecdsa.install()
    assert fast == original
    assert fast[1] == "Account: invalid signature"
