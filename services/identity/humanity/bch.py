"""Binary narrow-sense primitive BCH codes for ``fuzzy``: construction, systematic
encoding, and a compiled bounded-distance decoder.

The codes are galois's ``BCH(n, k)`` (same field polynomial, generator and systematic
layout; ``test_components`` checks them against galois, which stays the reference in the
tests). Building them here costs milliseconds, where galois's construction JIT-compiles
its general field arithmetic (~7 s of CPU per process), and galois's general-purpose
decoder cost ~0.5 ms a word, 98% of the duplicate check. Codes have length ``2^m - 1``;
the decoder works on batches in a numba loop (tens of microseconds a word):

1. odd syndromes ``S_j = r(alpha^j)`` from log/antilog tables, even ones by squaring
   (``S_2j = S_j^2`` for binary words);
2. Berlekamp-Massey for the error-locator polynomial ``Lambda``;
3. Chien search for its roots; a word is corrected only when ``deg Lambda <= t`` and
   ``Lambda`` has exactly ``deg Lambda`` distinct roots among the code positions,
   otherwise it is reported as a failure (-1), exactly as galois does.

The result is bit-for-bit galois's (``errors`` and the corrected message), which
``test_components`` checks on random words inside and beyond the decoding radius.
Codewords are galois's: bit ``i`` of a word is the coefficient of ``x^(n-1-i)`` and the
systematic message is the first ``k`` bits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldTables:
    """GF(2^m) antilog (``exp``, doubled so sums of two logs need no reduction) and log."""

    order: int  # 2^m - 1: the multiplicative group's order and the code length
    exp: np.ndarray
    log: np.ndarray


@functools.cache
def field_tables(m: int, primitive_poly: int) -> FieldTables:
    """Tables of GF(2^m) built from ``primitive_poly`` (an int, bit ``m`` set)."""
    order = (1 << m) - 1
    exp = np.zeros(2 * order, np.int32)
    log = np.full(order + 1, -1, np.int32)
    value = 1
    for power in range(order):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value >> m:
            value ^= primitive_poly
    if value != 1:
        raise ValueError("the polynomial is not primitive")
    exp[order:] = exp[:order]
    return FieldTables(order, exp, log)


# galois's default (Conway) primitive polynomials of GF(2^m), as ints with bit m set.
PRIMITIVE_POLYNOMIALS = {8: 0x11D}


@dataclass(frozen=True)
class BchCode:
    """A narrow-sense primitive binary BCH code: length ``n``, dimension ``k``, ``t``
    correctable errors, ``generator`` as 0/1 coefficients from ``x^(n-k)`` down to 1."""

    n: int
    k: int
    t: int
    generator: np.ndarray
    tables: FieldTables

    def encode(self, messages: np.ndarray) -> np.ndarray:
        """Systematic codewords of ``messages`` (uint8 0/1, shape (rows, k)) -> (rows, n):
        the message followed by ``message(x) x^(n-k) mod generator(x)``."""
        rows, parity = messages.shape[0], self.n - self.k
        remainder = np.zeros((rows, parity), np.uint8)
        taps = self.generator[1:]
        for i in range(self.k):  # long division over GF(2), the LFSR form
            feedback = messages[:, i] ^ remainder[:, 0]
            remainder[:, :-1] = remainder[:, 1:]
            remainder[:, -1] = 0
            remainder ^= feedback[:, None] & taps
        codewords = np.concatenate([messages.astype(np.uint8), remainder], axis=1)
        remainder.fill(0)  # part of the (secret) codewords
        return codewords


def _cyclotomic_coset(power: int, order: int) -> list[int]:
    coset, value = [], power
    while value not in coset:
        coset.append(value)
        value = (2 * value) % order
    return coset


def _times_linear(poly: list[int], root: int, tables: FieldTables) -> list[int]:
    """``poly(x) * (x - alpha^root)`` over GF(2^m); coefficients from the lowest degree."""
    out = [0, *poly]  # x * poly
    for i, coefficient in enumerate(poly):  # + alpha^root * poly (minus is plus)
        if coefficient:
            out[i] ^= int(tables.exp[tables.log[coefficient] + root])
    return out


@functools.cache
def bch_code(n: int, k: int) -> BchCode:
    """The narrow-sense BCH code of length ``n = 2^m - 1`` and dimension ``k`` (galois's
    ``BCH(n, k)``); ValueError when no such code has dimension ``k``."""
    m = (n + 1).bit_length() - 1
    if (1 << m) - 1 != n or m not in PRIMITIVE_POLYNOMIALS:
        raise ValueError(f"no primitive BCH code of length {n} here")
    tables = field_tables(m, PRIMITIVE_POLYNOMIALS[m])
    roots: set[int] = set()
    designed = 1  # roots alpha^1 .. alpha^(designed - 1) are in the generator
    while n - len(roots) > k:
        roots.update(_cyclotomic_coset(designed, n))
        designed += 1
    while designed in roots:
        designed += 1
    if n - len(roots) != k:
        raise ValueError(f"no BCH code of length {n} has dimension {k}")
    poly = [1]
    for root in sorted(roots):
        poly = _times_linear(poly, root, tables)
    if any(c not in (0, 1) for c in poly):  # pragma: no cover - closed under conjugation
        raise AssertionError("the generator polynomial is not binary")
    generator = np.array(poly[::-1], np.uint8)
    generator.setflags(write=False)
    return BchCode(n, k, (designed - 1) // 2, generator, tables)


def _kernel():  # type: ignore[no-untyped-def]
    """Compile the batch decoder (numba is imported lazily: seconds of start-up)."""
    import numba

    @numba.njit(cache=False, nogil=True)
    def decode_batch(  # type: ignore[no-untyped-def]
        words, k, t, exp, log, order, messages, errors
    ):
        rows, n = words.shape
        two_t = 2 * t
        syndromes = np.zeros(two_t + 1, np.int32)
        lam = np.zeros(two_t + 2, np.int32)
        prev = np.zeros(two_t + 2, np.int32)
        tmp = np.zeros(two_t + 2, np.int32)
        positions = np.zeros(t + 1, np.int32)
        terms = np.zeros(t + 1, np.int32)
        for row in range(rows):
            word = words[row]
            # syndromes S_1..S_2t (index j), odd ones from the set bits
            for j in range(two_t + 1):
                syndromes[j] = 0
            nonzero = False
            for i in range(n):
                if word[i]:
                    degree = n - 1 - i
                    step = (2 * degree) % order
                    power = degree  # j * degree mod order, j = 1, 3, 5, ...
                    for j in range(1, two_t + 1, 2):
                        syndromes[j] ^= exp[power]
                        power += step
                        if power >= order:
                            power -= order
            for j in range(1, two_t + 1):
                if j % 2 == 0:
                    half = syndromes[j // 2]
                    syndromes[j] = 0 if half == 0 else exp[(2 * log[half]) % order]
                if syndromes[j] != 0:
                    nonzero = True
            for i in range(k):
                messages[row, i] = word[i]
            if not nonzero:
                errors[row] = 0
                continue
            # Berlekamp-Massey: lam(x) = 1 + lam_1 x + ... ; prev is B(x)
            for j in range(two_t + 2):
                lam[j] = 0
                prev[j] = 0
            lam[0] = 1
            prev[0] = 1
            length = 0
            shift = 1
            last = 1  # discrepancy when prev was saved
            lam_top = 0  # highest index that may be non-zero in lam / prev
            prev_top = 0
            for step in range(two_t):
                # discrepancy d = S_(step+1) + sum lam_i S_(step+1-i)
                d = syndromes[step + 1]
                for i in range(1, length + 1):
                    if lam[i] != 0 and syndromes[step + 1 - i] != 0:
                        d ^= exp[log[lam[i]] + log[syndromes[step + 1 - i]]]
                if d == 0:
                    shift += 1
                    continue
                log_coef = (log[d] - log[last]) % order  # log(d / last)
                top = min(prev_top, two_t + 1 - shift)
                if 2 * length <= step:
                    for j in range(lam_top + 1):
                        tmp[j] = lam[j]
                    tmp_top = lam_top
                    for j in range(top + 1):
                        if prev[j] != 0:
                            lam[j + shift] ^= exp[log_coef + log[prev[j]]]
                    lam_top = max(lam_top, top + shift)
                    length = step + 1 - length
                    for j in range(prev_top + 1):
                        prev[j] = 0
                    for j in range(tmp_top + 1):
                        prev[j] = tmp[j]
                    prev_top = tmp_top
                    last = d
                    shift = 1
                else:
                    for j in range(top + 1):
                        if prev[j] != 0:
                            lam[j + shift] ^= exp[log_coef + log[prev[j]]]
                    lam_top = max(lam_top, top + shift)
                    shift += 1
            degree_lam = 0
            for j in range(two_t + 1, -1, -1):
                if lam[j] != 0:
                    degree_lam = j
                    break
            if degree_lam > t or degree_lam != length:
                errors[row] = -1
                continue
            # Chien search: an error at degree e <=> lam(alpha^-e) == 0
            # terms[j] = log(lam_j) - e * j mod order, updated as e grows; -1: lam_j == 0
            for j in range(1, degree_lam + 1):
                terms[j] = log[lam[j]] if lam[j] != 0 else -1
            found = 0
            for e in range(n):
                acc = 1
                for j in range(1, degree_lam + 1):
                    if terms[j] >= 0:
                        acc ^= exp[terms[j]]
                        terms[j] -= j
                        if terms[j] < 0:
                            terms[j] += order
                if acc == 0:
                    if found == degree_lam:
                        found += 1
                        break
                    positions[found] = e
                    found += 1
            if found != degree_lam:
                errors[row] = -1
                continue
            for j in range(found):
                i = n - 1 - positions[j]
                if i < k:
                    messages[row, i] ^= 1
            errors[row] = found
        return 0

    return decode_batch


_KERNEL = None


def decode(words: np.ndarray, k: int, t: int, tables: FieldTables) -> tuple[np.ndarray, np.ndarray]:
    """Decode rows of ``words`` (uint8 0/1, shape (rows, n)) -> (messages, errors).

    ``messages`` are the first ``k`` bits of each corrected word; ``errors`` is the number
    of corrected bits, or -1 for a row the decoder could not correct.
    """
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _kernel()
    rows, n = words.shape
    if n != tables.order:
        raise ValueError(f"word length {n} is not the field's {tables.order}")
    messages = np.zeros((rows, k), np.uint8)
    errors = np.zeros(rows, np.int64)
    _KERNEL(
        np.ascontiguousarray(words, np.uint8),
        k,
        t,
        tables.exp,
        tables.log,
        tables.order,
        messages,
        errors,
    )
    return messages, errors
