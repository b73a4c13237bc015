"""Faster drop-ins for the two pure-Python hot spots of Stark ECDSA in cairo-lang's VM.

An account's ``__validate__`` runs ``check_ecdsa_signature``; in cairo-lang 0.14.0.1 most
of its time goes to

- ``ec_op_impl`` (the ``ec_op`` builtin's auto-deduction, computing P + m*Q): 256 affine
  doublings and up to 256 affine additions, each paying a modular inversion through
  sympy's ``igcdex``; about 25 ms a call, three calls a signature check;
- ``math_utils.sqrt`` (the hint recovering a point from its x coordinate, also used by
  ``random_ec_point``): sympy's Tonelli-Shanks, slow for the Stark prime whose p - 1 is
  divisible by 2**192; about 30 ms a call.

The replacements compute exactly the same values and fail in exactly the same cases:

- ``ec_op_impl`` runs the same double-and-add loop in Jacobian coordinates, so there is
  one inversion at the end instead of one per step, and it keeps every check of the
  original (the "two points with the same x coordinate" assertion at every step, which
  mirrors the AIR, and the non-zero y of each doubled point) by comparing x coordinates
  projectively (X1*Z2^2 == X2*Z1^2). The Jacobian formulas are the affine ones rewritten
  with x = X/Z^2, y = Y/Z^3 and never use the curve equation, so they agree with the
  original even on inputs that are not curve points.
- ``sqrt`` uses Cipolla's algorithm for the Stark field prime (about 250 steps in
  GF(p^2)) and returns the smaller root, as the original does; any other modulus, and
  non-residues (a ValueError, like the original's ``min([])``), go to the original.

``install()`` swaps them into cairo-lang's modules (idempotent; the hints import
``sqrt`` from ``starkware.python.math_utils`` when they run, and the builtin runner looks
``ec_op_impl`` up in its module when it runs, so both see the swap). ``uninstall()``
restores the originals. ``chain.vm`` installs them on import; the property tests in
``chain/tests/test_fast_ecdsa.py`` compare both implementations.
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
from collections.abc import Callable
from typing import Any

from starkware.cairo.lang.builtins.ec import ec_op_builtin_runner
from starkware.crypto.signature.signature import FIELD_PRIME
from starkware.python import math_utils

__all__ = [
    "ORIGINAL_EC_OP_IMPL",
    "ORIGINAL_SQRT",
    "fast_ec_op_impl",
    "fast_sqrt",
    "install",
    "is_installed",
    "uninstall",
]

ORIGINAL_EC_OP_IMPL: Callable[..., tuple[int, int]] = ec_op_builtin_runner.ec_op_impl
ORIGINAL_SQRT: Callable[[Any, Any], int] = math_utils.sqrt

_HALF_P_MINUS_1 = (FIELD_PRIME - 1) // 2


def _same_x_message(p: tuple[int, int], m: int, q: tuple[int, int]) -> str:
    # Word for word the original's message: callers and logs see no difference.
    return (
        "Cannot apply EC operation: computation reached two points with the same x coordinate."
        "\nAttempting to compute P + m * Q where:\n"
        f"P = {p}\n"
        f"m = {m}\n"
        f"Q = {q}."
    )


def fast_ec_op_impl(
    p_x: int, p_y: int, q_x: int, q_y: int, m: int, alpha: int, prime: int, height: int
) -> tuple[int, int]:
    """``ec_op_impl`` (P + m*Q with the AIR's failure cases) in Jacobian coordinates."""
    if prime != FIELD_PRIME:
        # The original's div_mod asserts invertibility, which only a prime guarantees.
        return ORIGINAL_EC_OP_IMPL(p_x, p_y, q_x, q_y, m, alpha, prime, height)
    p = prime
    orig_m = m
    # D: the doubled point 2^i * Q, Jacobian (dx, dy, dz); S: the partial sum.
    dx, dy, dz = q_x % p, q_y % p, 1
    sx, sy, sz = p_x % p, p_y % p, 1
    added = False
    for _ in range(height):
        dz2 = dz * dz % p
        sz2 = sz * sz % p
        u_d = dx * sz2 % p  # D.x scaled to a common denominator with S.x
        u_s = sx * dz2 % p
        assert u_d != u_s, _same_x_message((p_x, p_y), orig_m, (q_x, q_y))
        if m & 1:
            # S = S + D (add-1998-cmo-2 ordering of the textbook formulas).
            s_s = sy * dz2 % p * dz % p
            s_d = dy * sz2 % p * sz % p
            h = (u_d - u_s) % p
            r = (s_d - s_s) % p
            h2 = h * h % p
            h3 = h2 * h % p
            u_s_h2 = u_s * h2 % p
            nx = (r * r - h3 - 2 * u_s_h2) % p
            sy = (r * (u_s_h2 - nx) - s_s * h3) % p
            sx = nx
            sz = h * sz % p * dz % p
            added = True
        # D = 2D; the original asserts y != 0 before every doubling, the last included.
        assert dy % p != 0
        dy2 = dy * dy % p
        s = 4 * dx * dy2 % p
        mm = (3 * dx * dx + alpha * dz2 * dz2) % p
        ndx = (mm * mm - 2 * s) % p
        dy, dz = (mm * (s - ndx) - 8 * dy2 * dy2) % p, 2 * dy * dz % p
        dx = ndx
        m >>= 1
    if not added:
        # The original hands P back untouched (not even reduced) when it never adds.
        return (p_x, p_y)
    z_inv = pow(sz, -1, p)
    z_inv2 = z_inv * z_inv % p
    return (sx * z_inv2 % p, sy * z_inv2 % p * z_inv % p)


def _cipolla(n: int, p: int) -> int:
    """A square root of the quadratic residue n (0 < n < p) modulo the odd prime p."""
    # Smallest a with a^2 - n a non-residue: deterministic, and about two tries expected.
    a = 0
    while True:
        w = (a * a - n) % p
        if pow(w, (p - 1) // 2, p) == p - 1:
            break
        a += 1
    # (a + sqrt(w))^((p+1)/2) in GF(p^2) = GF(p)[t]/(t^2 - w), by square-and-multiply.
    r0, r1 = 1, 0
    b0, b1 = a, 1
    e = (p + 1) // 2
    while e:
        if e & 1:
            r0, r1 = (r0 * b0 + r1 * b1 % p * w) % p, (r0 * b1 + r1 * b0) % p
        b0, b1 = (b0 * b0 + b1 * b1 % p * w) % p, 2 * b0 * b1 % p
        e >>= 1
    return r0


def fast_sqrt(n: Any, p: Any) -> int:
    """``math_utils.sqrt``: the smallest non-negative m with m*m % p == n % p."""
    if p != FIELD_PRIME or not isinstance(n, int):
        return ORIGINAL_SQRT(n, p)
    n %= p
    if n == 0:
        return 0
    if pow(n, _HALF_P_MINUS_1, p) != 1:
        # Non-residue: let the original raise its own error.
        return ORIGINAL_SQRT(n, p)
    root = _cipolla(n, p)
    return min(root, p - root)


def install() -> None:
    ec_op_builtin_runner.ec_op_impl = fast_ec_op_impl
    math_utils.sqrt = fast_sqrt


def uninstall() -> None:
    ec_op_builtin_runner.ec_op_impl = ORIGINAL_EC_OP_IMPL
    math_utils.sqrt = ORIGINAL_SQRT


def is_installed() -> bool:
    return ec_op_builtin_runner.ec_op_impl is fast_ec_op_impl and math_utils.sqrt is fast_sqrt
