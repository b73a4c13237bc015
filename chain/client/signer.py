"""A faster Stark-curve ECDSA signer, equal to starknet-py's ``message_signature``.

starknet-py signs through crypto-cpp's ``Sign``, which multiplies the generator by the
nonce ``k`` with a plain double-and-add: on these machines about 80 ms per signature
unloaded (and several hundred under load), paid twice per estimated invoke. Here the
same signature is computed with a fixed-base window table of the generator (64 windows
of 4 bits, built once per process), so ``k*G`` is 63 mixed Jacobian additions and one
inversion:

* ``k`` is crypto-cpp's own RFC 6979 nonce (``cpp_generate_k_rfc6979``, seed 32, as
  ``message_signature`` uses), so the signature is deterministic and identical;
* ``r = x(k*G)``, ``s = (msg_hash + r*priv) / k mod n``: crypto-cpp returns
  ``w = k / (msg_hash + r*priv)`` and starknet-py inverts it;
* every case the reference rejects or treats specially (out-of-range inputs, ``r`` not
  below 2**251, a zero ``msg_hash + r*priv``) is delegated to the reference itself.

``chain/tests/client/test_signer.py`` compares both on random keys and hashes.
"""

from __future__ import annotations

from functools import cache

from crypto_cpp_py.utils import cpp_generate_k_rfc6979
from starknet_py.constants import EC_ORDER
from starknet_py.hash.utils import message_signature
from starknet_py.net.models import AddressRepresentation
from starknet_py.net.models.chains import ChainId
from starknet_py.net.models.transaction import AccountTransaction
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.signer.stark_curve_signer import StarkCurveSigner
from starknet_py.utils.typed_data import TypedData

FIELD_PRIME = 2**251 + 17 * 2**192 + 1
ALPHA = 1
GENERATOR = (
    0x1EF15C18599971B7BECED415A40F0C7DEACFD9B0D1819E03D723D8BC943CFCA,
    0x5668060AA49730B7BE4801DF46EC62DE53ECD11ABE43A32873000C36E8DC1F,
)
UPPER_BOUND = 2**251
SEED = 32  # what starknet-py's message_signature passes to crypto-cpp
WINDOW_BITS = 4
WINDOWS = 64

Affine = tuple[int, int]
Jacobian = tuple[int, int, int]  # (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is infinity

_P = FIELD_PRIME


def _affine_add(a: Affine | None, b: Affine | None) -> Affine | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0]:
        if (a[1] + b[1]) % _P == 0:
            return None
        slope = (3 * a[0] * a[0] + ALPHA) * pow(2 * a[1], -1, _P) % _P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, _P) % _P
    x = (slope * slope - a[0] - b[0]) % _P
    return x, (slope * (a[0] - x) - a[1]) % _P


@cache
def _table() -> list[list[Affine | None]]:
    """``table[i][d] = d * 16**i * G`` for d in 0..15 (None is the point at infinity)."""
    table = []
    base: Affine | None = GENERATOR
    for _ in range(WINDOWS):
        row: list[Affine | None] = [None]
        for _ in range(1, 1 << WINDOW_BITS):
            row.append(_affine_add(row[-1], base))
        table.append(row)
        base = _affine_add(row[-1], base)  # 16 * base
    return table


def _double(p: Jacobian) -> Jacobian:
    x, y, z = p
    if z == 0 or y == 0:
        return (1, 1, 0)
    yy = y * y % _P
    s = 4 * x * yy % _P
    zz = z * z % _P
    m = (3 * x * x + ALPHA * zz * zz) % _P
    x3 = (m * m - 2 * s) % _P
    y3 = (m * (s - x3) - 8 * yy * yy) % _P
    return x3, y3, 2 * y * z % _P


def _add_affine(p: Jacobian, q: Affine) -> Jacobian:
    """Mixed addition P + Q (P Jacobian, Q affine), complete for all cases."""
    x1, y1, z1 = p
    if z1 == 0:
        return q[0], q[1], 1
    z1z1 = z1 * z1 % _P
    u2 = q[0] * z1z1 % _P
    s2 = q[1] * z1 * z1z1 % _P
    h = (u2 - x1) % _P
    r = (s2 - y1) % _P
    if h == 0:
        return _double(p) if r == 0 else (1, 1, 0)
    hh = h * h % _P
    hhh = h * hh % _P
    v = x1 * hh % _P
    x3 = (r * r - hhh - 2 * v) % _P
    y3 = (r * (v - x3) - y1 * hhh) % _P
    return x3, y3, z1 * h % _P


def generator_multiple(k: int) -> Affine | None:
    """``k * G`` in affine coordinates (None for the point at infinity)."""
    k %= EC_ORDER
    table = _table()
    acc: Jacobian = (1, 1, 0)
    for i in range(WINDOWS):
        digit = (k >> (WINDOW_BITS * i)) & ((1 << WINDOW_BITS) - 1)
        point = table[i][digit]
        if point is not None:
            acc = _add_affine(acc, point)
    x, y, z = acc
    if z == 0:
        return None
    z_inv = pow(z, -1, _P)
    z_inv2 = z_inv * z_inv % _P
    return x * z_inv2 % _P, y * z_inv2 * z_inv % _P


def fast_message_signature(msg_hash: int, priv_key: int) -> tuple[int, int]:
    """Equal to ``starknet_py.hash.utils.message_signature(msg_hash, priv_key)``."""
    if not (0 <= msg_hash < UPPER_BOUND and 1 <= priv_key < EC_ORDER):
        return tuple(message_signature(msg_hash, priv_key))  # type: ignore[return-value]
    k = cpp_generate_k_rfc6979(msg_hash, priv_key, SEED)
    point = generator_multiple(k)
    r = 0 if point is None else point[0]
    z = (msg_hash + r * priv_key) % EC_ORDER
    if not 1 <= r < UPPER_BOUND or z == 0:
        return tuple(message_signature(msg_hash, priv_key))  # type: ignore[return-value]
    w = k * pow(z, -1, EC_ORDER) % EC_ORDER
    if not 1 <= w < UPPER_BOUND:
        return tuple(message_signature(msg_hash, priv_key))  # type: ignore[return-value]
    return r, pow(w, -1, EC_ORDER)


class FastStarkSigner(StarkCurveSigner):
    """starknet-py's ``StarkCurveSigner`` with :func:`fast_message_signature`."""

    def __init__(
        self, account_address: AddressRepresentation, key_pair: KeyPair, chain_id: ChainId
    ) -> None:
        super().__init__(account_address, key_pair, chain_id)

    def sign_transaction(self, transaction: AccountTransaction) -> list[int]:
        tx_hash = transaction.calculate_hash(self.chain_id)
        return list(fast_message_signature(tx_hash, self.private_key))

    def sign_message(self, typed_data: TypedData, account_address: int) -> list[int]:
        return list(
            fast_message_signature(typed_data.message_hash(account_address), self.private_key)
        )
