"""Feature bits the fuzzy extractor works on, for each modality.

Iris. An iris code has :data:`iris.CODE_BITS` bits, strongly correlated with their
neighbours and of uneven quality. At enrollment we keep :data:`IRIS_BITS` of them: the
valid bits with the largest ``strength x prior``, where ``strength`` is the Gabor
response magnitude behind the bit (a bit far from the sign boundary flips rarely) and
the prior ``1 - 0.8 * rho * |sin(theta)|`` favours bits near the pupil and away from
the top and bottom of the iris, where eyelids come and go between captures. The chosen
positions are put in a random order (so an occluded region spreads over every code
block instead of sinking one) and stored in the helper data: they reveal which parts
of the iris were visible and textured, not the bits' values.

At reproduction the same positions are read from the new code at each rotation
``-MAX_SHIFT..MAX_SHIFT`` code columns; bits the new mask hides are erasures.

Genome. Two bits per panel locus (:func:`genome.genotype_bits`), missing calls are
erasures, all 510 loci in panel order: ``2 x 510 = 1020`` bits.
"""

from __future__ import annotations

import secrets

import numpy as np

from services.identity.humanity import iris
from services.identity.humanity.fuzzy import BchParams
from services.identity.humanity.iris import IrisCode

IRIS_ECC = BchParams(n=255, k=37, blocks=4)
"""4 x BCH(255, 37, t=45): 1020 iris bits, a block decodes while 2*errors + erasures
<= 90 (17.6% of the block). Chosen from the evaluation in docs/humanity.md."""
GENOME_ECC = BchParams(n=255, k=115, blocks=4)
"""4 x BCH(255, 115, t=21): the 1020 genotype bits of the panel (8.2% per block)."""
IRIS_BITS = IRIS_ECC.bits
MAX_SHIFT = iris.MAX_SHIFT_COLUMNS
PRIOR_WEIGHT = 0.8


def _prior() -> np.ndarray:
    rho = (np.arange(iris.CODE_ROWS) + 0.5) / iris.CODE_ROWS
    theta = 2 * np.pi * np.arange(iris.CODE_COLS) / iris.CODE_COLS
    prior = 1 - PRIOR_WEIGHT * rho[:, None] * np.abs(np.sin(theta))[None, :]
    shape = (iris.N_FILTERS, iris.CODE_ROWS, iris.CODE_COLS, 2)
    return np.broadcast_to(prior[None, :, :, None], shape).ravel().astype(np.float32)


_PRIOR = _prior()


def select_iris_positions(
    code: IrisCode, count: int = IRIS_BITS, *, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Positions (uint16, random order) of the ``count`` most reliable visible bits.

    ``rng`` fixes the order for reproducible evaluations; by default it is random.
    """
    score = np.where(code.mask.ravel(), code.strength.ravel() * _PRIOR, -1.0)
    if int((score > 0).sum()) < count:
        score.fill(0)
        raise ValueError("not enough visible iris bits")
    best = np.argpartition(-score, count - 1)[:count]
    score.fill(0)
    order = (rng or np.random.default_rng(secrets.randbits(128))).permutation(count)
    return best[order].astype(np.uint16)


def iris_bits(
    code: IrisCode, positions: np.ndarray, shift: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(bits, known)`` of ``code`` rotated by ``shift`` columns at ``positions``."""
    shifted = code.shifted(shift) if shift else code
    bits = shifted.bits.ravel()[positions].astype(np.uint8)
    known = shifted.mask.ravel()[positions].copy()
    if shift:
        shifted.wipe()
    return bits, known


def shift_order(max_shift: int = MAX_SHIFT) -> list[int]:
    """0, 1, -1, 2, -2, ...: likely rotations first."""
    order = [0]
    for s in range(1, max_shift + 1):
        order += [s, -s]
    return order
