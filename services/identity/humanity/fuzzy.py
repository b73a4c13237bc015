"""Code-offset fuzzy extractor over binary BCH codes (:mod:`.bch`, galois's codes).

``gen(w)`` draws random messages ``m``, encodes them to BCH codewords ``c`` and
publishes the offset ``c XOR w`` (the helper data); ``rep(w', offset)`` decodes
``offset XOR w' = c XOR (w XOR w')`` and gets ``m`` back whenever ``w'`` differs from
``w`` in at most ``t`` bits per codeword. Long feature vectors are split into several
codewords of length ``n`` (blocks); every block must decode.

Erasures (bits the new capture cannot see: eyelids, reflections, missing genotype
calls) are handled with the classical two-trial method for binary codes: decode once
with every erased bit set to 0 and once set to 1. One of the two trials has at most
``e/2`` wrong erased bits, so a block with ``v`` errors and ``e`` erasures decodes
whenever ``2v + e <= 2t``. Each block keeps every distinct successful trial; the
caller checks the combinations against a hash (:mod:`.pipeline`).

:mod:`.bch` builds the codes, encodes, and decodes with a compiled decoder that gives
galois's results bit for bit at a small fraction of its cost. The decoder is JIT-compiled
on first use (about a second per process): :func:`warm_up` does that up front.

:func:`rep_trials` decodes in two stages: the first block of every candidate reading
first, the other blocks only for readings whose first block decoded with some fill. A
reading with an undecodable block yields no message either way, so the result is the
same as decoding everything, and a capture of someone else (every first block fails)
costs a quarter of the decoding.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from services.identity.humanity import bch


@dataclass(frozen=True)
class BchParams:
    n: int
    k: int
    blocks: int

    @property
    def bits(self) -> int:
        return self.n * self.blocks

    @property
    def message_bits(self) -> int:
        return self.k * self.blocks


def _code(params: BchParams) -> bch.BchCode:
    return bch.bch_code(params.n, params.k)


def correctable(params: BchParams) -> int:
    """``t``: errors per block the code corrects (``2v + e <= 2t`` with erasures)."""
    return _code(params).t


def _decode(params: BchParams, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode rows of ``words`` (uint8 0/1, shape (rows, n)) -> (messages, errors).

    ``errors`` is -1 for a row the decoder could not correct.
    """
    code = _code(params)
    return bch.decode(words, code.k, code.t, code.tables)


def warm_up(*codes: BchParams) -> None:
    """Build the codes and compile the decoder now rather than on the first request."""
    for params in codes:
        zero = np.zeros((1, params.n), np.uint8)
        _decode(params, zero)


def gen(params: BchParams, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code-offset generation. ``features``: uint8 0/1 of length ``params.bits``.

    Returns ``(messages, offset)``: the random messages (uint8 bits, ``blocks x k``)
    and the public offset (uint8 bits, ``params.bits``).
    """
    if features.shape != (params.bits,):
        raise ValueError(f"expected {params.bits} feature bits, got {features.shape}")
    raw = np.frombuffer(secrets.token_bytes(params.message_bits), np.uint8) & 1
    messages = raw.reshape(params.blocks, params.k).copy()
    codewords = _code(params).encode(messages).ravel()
    offset = codewords ^ features
    codewords.fill(0)
    return messages, offset


@dataclass
class Trials:
    """Per candidate alignment, per block: the distinct messages that decoded."""

    candidates: list[list[list[bytes]]]

    def combinations(self, alignment: int, limit: int = 16) -> Iterator[bytes]:
        """Concatenated block messages (as bytes of 0/1 bits), at most ``limit``."""
        blocks = self.candidates[alignment]
        if any(not options for options in blocks):
            return
        yield from itertools.islice(
            (b"".join(parts) for parts in itertools.product(*blocks)), limit
        )


def rep_trials(
    params: BchParams, offset: np.ndarray, candidates: Sequence[tuple[np.ndarray, np.ndarray]]
) -> Trials:
    """Decode ``offset XOR w'`` for each candidate ``(w' bits, known mask)``.

    The candidates are alternative readings of the new capture (e.g. rotations); all
    of them are decoded in one batch, with the two erasure fills.
    """
    blocks, n, k = params.blocks, params.n, params.k
    words = np.empty((len(candidates), 2, blocks, n), np.uint8)
    for a, (bits, known) in enumerate(candidates):
        for fill in (0, 1):
            filled = np.where(known, bits, np.uint8(fill)).astype(np.uint8)
            words[a, fill] = (offset ^ filled).reshape(blocks, n)
            filled.fill(0)
    messages = np.zeros((len(candidates), 2, blocks, k), np.uint8)
    errors = np.full((len(candidates), 2, blocks), -1, np.int64)
    # stage 1: the first block of every reading; stage 2: the rest, where it decoded
    stage = np.ascontiguousarray(words[:, :, 0]).reshape(-1, n)
    first_m, first_e = _decode(params, stage)
    stage.fill(0)
    messages[:, :, 0] = first_m.reshape(len(candidates), 2, k)
    errors[:, :, 0] = first_e.reshape(len(candidates), 2)
    first_m.fill(0)
    alive = np.nonzero((errors[:, :, 0] >= 0).any(axis=1))[0]
    if blocks > 1 and len(alive):
        stage = np.ascontiguousarray(words[alive, :, 1:]).reshape(-1, n)
        rest_m, rest_e = _decode(params, stage)
        stage.fill(0)
        messages[alive, :, 1:] = rest_m.reshape(len(alive), 2, blocks - 1, k)
        errors[alive, :, 1:] = rest_e.reshape(len(alive), 2, blocks - 1)
        rest_m.fill(0)
    words.fill(0)
    out: list[list[list[bytes]]] = []
    for a in range(len(candidates)):
        per_block: list[list[bytes]] = []
        for b in range(params.blocks):
            options: list[tuple[int, bytes]] = []
            for fill in (0, 1):
                if errors[a, fill, b] >= 0:
                    message = messages[a, fill, b].tobytes()
                    if all(message != m for _, m in options):
                        options.append((int(errors[a, fill, b]), message))
            per_block.append([m for _, m in sorted(options)])
        out.append(per_block)
    messages.fill(0)
    return Trials(out)


def pack(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def unpack(data: bytes, count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))[:count].copy()
