"""Synthetic iris images and genome samples for tests, evaluation and benchmarks.

No biometric data set is reachable from this project, so the pipeline is measured on
a synthetic population. Everything is deterministic per ``(seed, person, capture)``:

* a **person** has a fixed iris texture (band-limited noise, radial furrows, crypts,
  a collarette) defined in normalized polar coordinates, an iris radius, a pupil
  ratio and a genotype at every locus of the SNP panel (drawn with the panel's
  synthetic allele frequencies under Hardy-Weinberg equilibrium);
* a **capture** of that person renders the texture into an eye image with a random
  position, zoom, rotation, pupil dilation, upper and lower eyelids, specular
  reflections, blur, sensor noise and exposure, and renders the genotypes into a VCF
  or FASTA file with sequencing errors (wrong calls, missing calls, base errors).

Images are PNG bytes and genomes are text bytes, all produced in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from services.identity.humanity.panel import PANEL, SnpLocus

TEXTURE_H = 64
TEXTURE_W = 512

IUPAC_PAIRS: dict[frozenset[str], str] = {
    frozenset("AG"): "R",
    frozenset("CT"): "Y",
    frozenset("GC"): "S",
    frozenset("AT"): "W",
    frozenset("GT"): "K",
    frozenset("AC"): "M",
}


@dataclass(frozen=True)
class CaptureNoise:
    """How hard a capture is. The defaults are the evaluation's operating conditions."""

    max_rotation_deg: float = 8.0
    max_offset_px: float = 12.0
    zoom: float = 0.05
    dilation: float = 0.04
    eyelid_coverage: tuple[float, float] = (0.45, 0.95)
    blur_sigma: tuple[float, float] = (0.4, 1.4)
    noise_sigma: tuple[float, float] = (2.0, 6.0)
    genotype_error_rate: float = 0.01
    missing_rate: float = 0.01


DEFAULT_NOISE = CaptureNoise()


@dataclass(frozen=True)
class SyntheticPerson:
    seed: int
    person: int
    texture: np.ndarray  # float32 (TEXTURE_H, TEXTURE_W), zero mean, unit std
    iris_mean: float
    iris_contrast: float
    iris_radius_frac: float  # iris radius as a fraction of the image height
    pupil_ratio: float
    genotypes: tuple[int, ...]  # alt-allele count per panel locus


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([abs(k) for k in key]))


def _wrap_blur(field: np.ndarray, sigma: float) -> np.ndarray:
    pad = int(3 * sigma) + 1
    padded = np.pad(field, ((pad, pad), (pad, pad)), mode="wrap")
    blurred = cv2.GaussianBlur(padded, (0, 0), sigma)
    return np.ascontiguousarray(blurred[pad:-pad, pad:-pad])


def make_person(seed: int, person: int) -> SyntheticPerson:
    """The fixed traits of synthetic person ``person`` in population ``seed``."""
    rng = _rng(seed, person, 0xE1E)
    shape = (TEXTURE_H, TEXTURE_W)
    texture = np.zeros(shape, np.float32)
    for sigma, weight in ((1.2, 0.6), (2.5, 1.0), (5.0, 0.8)):
        layer = _wrap_blur(rng.standard_normal(shape).astype(np.float32), sigma)
        texture += weight * layer / (layer.std() + 1e-6)
    # radial furrows: thin streaks along the radius at random angles
    cols = np.arange(TEXTURE_W, dtype=np.float32)
    rows = np.linspace(0.0, 1.0, TEXTURE_H, dtype=np.float32)[:, None]
    for _ in range(int(rng.integers(12, 24))):
        c0 = rng.uniform(0, TEXTURE_W)
        width = rng.uniform(1.0, 3.0)
        dist = np.minimum(np.abs(cols - c0), TEXTURE_W - np.abs(cols - c0))[None, :]
        start, stop = sorted(rng.uniform(0, 1, 2))
        radial = ((rows >= start) & (rows <= stop)).astype(np.float32)
        texture += rng.choice([-1.5, 1.5]) * np.exp(-((dist / width) ** 2)) * radial
    # crypts: dark blobs
    for _ in range(int(rng.integers(6, 14))):
        cy, cx = rng.uniform(0.1, 0.9) * TEXTURE_H, rng.uniform(0, TEXTURE_W)
        ry, rx = rng.uniform(2, 6), rng.uniform(4, 14)
        yy, xx = np.mgrid[0:TEXTURE_H, 0:TEXTURE_W].astype(np.float32)
        dx = np.minimum(np.abs(xx - cx), TEXTURE_W - np.abs(xx - cx))
        texture -= 2.0 * np.exp(-(((yy - cy) / ry) ** 2 + (dx / rx) ** 2))
    # collarette: a brighter band at a person-specific radius
    collar = rng.uniform(0.25, 0.45)
    texture += 0.8 * np.exp(-(((rows - collar) / 0.06) ** 2))
    texture = (texture - texture.mean()) / (texture.std() + 1e-6)

    genotypes = tuple(
        int((rng.random() < locus.alt_freq) + (rng.random() < locus.alt_freq)) for locus in PANEL
    )
    return SyntheticPerson(
        seed=seed,
        person=person,
        texture=texture.astype(np.float32),
        iris_mean=float(rng.uniform(85, 115)),
        iris_contrast=float(rng.uniform(18, 26)),
        iris_radius_frac=float(rng.uniform(0.30, 0.36)),
        pupil_ratio=float(rng.uniform(0.30, 0.45)),
        genotypes=genotypes,
    )


@dataclass(frozen=True)
class CaptureGeometry:
    """Ground truth of a synthetic capture (pixels, radians)."""

    cx: float
    cy: float
    iris_radius: float
    pupil_radius: float
    rotation: float


def _geometry(
    rng: np.random.Generator, person: SyntheticPerson, size: tuple[int, int], noise: CaptureNoise
) -> tuple[float, float, float, float, float]:
    h, w = size
    cx = w / 2 + rng.uniform(-noise.max_offset_px, noise.max_offset_px) * h / 240
    cy = h / 2 + rng.uniform(-noise.max_offset_px, noise.max_offset_px) * h / 240 * 0.5
    radius = person.iris_radius_frac * h * (1 + rng.uniform(-noise.zoom, noise.zoom))
    pupil = radius * (person.pupil_ratio + rng.uniform(-noise.dilation, noise.dilation))
    rotation = math.radians(rng.uniform(-noise.max_rotation_deg, noise.max_rotation_deg))
    return cx, cy, radius, pupil, rotation


def capture_geometry(
    person: SyntheticPerson,
    capture: int,
    *,
    size: tuple[int, int] = (240, 320),
    noise: CaptureNoise = DEFAULT_NOISE,
) -> CaptureGeometry:
    """Where :func:`iris_image` put the eye (for segmentation accuracy checks)."""
    rng = _rng(person.seed, person.person, capture, 0x1815)
    return CaptureGeometry(*_geometry(rng, person, size, noise))


def iris_image(
    person: SyntheticPerson,
    capture: int,
    *,
    size: tuple[int, int] = (240, 320),
    noise: CaptureNoise = DEFAULT_NOISE,
) -> bytes:
    """PNG bytes of one capture of ``person``'s eye. ``size`` is (height, width)."""
    rng = _rng(person.seed, person.person, capture, 0x1815)
    h, w = size
    cx, cy, radius, pupil, rotation = _geometry(rng, person, size, noise)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    r = np.sqrt(dx * dx + dy * dy)
    theta = np.mod(np.arctan2(dy, dx) - rotation, 2 * np.pi)
    rho = (r - pupil) / (radius - pupil)

    # sample the texture (wrapped in angle) at every pixel of the ring
    tex = np.pad(person.texture, ((0, 0), (2, 2)), mode="wrap")
    map_x = (theta / (2 * np.pi) * TEXTURE_W + 2).astype(np.float32)
    map_y = np.clip(rho, 0, 1).astype(np.float32) * (TEXTURE_H - 1)
    sampled = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    iris_value = person.iris_mean + person.iris_contrast * sampled
    # the iris darkens slightly towards the limbus
    iris_value -= 12 * np.clip(rho, 0, 1)

    skin = 168 + 6 * _wrap_blur(rng.standard_normal((h, w)).astype(np.float32), 6)
    sclera_r = radius * 2.3
    img = np.where(
        (dx / sclera_r) ** 2 + (dy / (sclera_r * 0.55)) ** 2 <= 1.0,
        np.float32(205),
        skin,
    ).astype(np.float32)
    img = np.where(rho <= 1.0, iris_value, img)
    img = np.where(r <= pupil, np.float32(22), img)

    # eyelids: upper parabola covering part of the iris, lower one less often
    top = cy - radius * rng.uniform(*noise.eyelid_coverage)
    curv = rng.uniform(0.6, 1.2) / (radius * 2.5)
    upper = top + curv * (xx - cx) ** 2
    bottom = cy + radius * rng.uniform(0.75, 1.25)
    lower = bottom - curv * 0.6 * (xx - cx) ** 2
    lid = (yy < upper) | (yy > lower)
    lid_skin = skin + 4
    img = np.where(lid, lid_skin, img)
    # a darker lash line along the upper lid edge
    edge = np.abs(yy - upper) < 1.5 * h / 240
    img = np.where(edge & (np.abs(xx - cx) < radius * 1.8), img * 0.55, img)

    # specular reflections of the illuminator
    for _ in range(int(rng.integers(1, 3))):
        ang = rng.uniform(0, 2 * np.pi)
        dist = pupil * rng.uniform(0.3, 1.3)
        rx, ry = cx + dist * math.cos(ang), cy + dist * math.sin(ang)
        rr = rng.uniform(2.5, 5.0) * h / 240
        img = np.where((xx - rx) ** 2 + (yy - ry) ** 2 <= rr * rr, np.float32(252), img)

    blurred = cv2.GaussianBlur(img, (0, 0), rng.uniform(*noise.blur_sigma))
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-10, 10)
    exposed = blurred * gain + offset + rng.normal(0, rng.uniform(*noise.noise_sigma), img.shape)
    pixels = np.clip(exposed, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def no_iris_image(seed: int, *, size: tuple[int, int] = (240, 320)) -> bytes:
    """PNG bytes of a textured scene with no eye in it (for rejection tests)."""
    rng = _rng(seed, 0xBAD)
    h, w = size
    field = _wrap_blur(rng.standard_normal((h, w)).astype(np.float32), 8)
    img = 150 + 25 * field / (field.std() + 1e-6)
    pixels = np.clip(img, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    return encoded.tobytes()


def _noisy_genotypes(
    person: SyntheticPerson, capture: int, noise: CaptureNoise
) -> list[int | None]:
    rng = _rng(person.seed, person.person, capture, 0x6E0)
    calls: list[int | None] = []
    for g in person.genotypes:
        u = rng.random()
        if u < noise.missing_rate:
            calls.append(None)
        elif u < noise.missing_rate + noise.genotype_error_rate:
            calls.append(int(rng.choice([x for x in (0, 1, 2) if x != g])))
        else:
            calls.append(g)
    return calls


def genome_vcf(
    person: SyntheticPerson, capture: int, *, noise: CaptureNoise = DEFAULT_NOISE
) -> bytes:
    """A single-sample VCF 4.2 of the panel loci with sequencing errors."""
    calls = _noisy_genotypes(person, capture, noise)
    lines = [
        "##fileformat=VCFv4.2",
        "##source=keiko-synthetic",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE",
    ]
    for locus, call in zip(PANEL, calls, strict=True):
        gt = "./." if call is None else ("0/0", "0/1", "1/1")[call]
        lines.append(
            f"{locus.chrom}\t{locus.pos}\t{locus.rsid}\t{locus.ref}\t{locus.alt}\t50\tPASS\t.\tGT\t{gt}"
        )
    return ("\n".join(lines) + "\n").encode()


def _window(locus: SnpLocus, flank: int, rng: np.random.Generator) -> str:
    bases = rng.choice(list("ACGT"), size=2 * flank + 1)
    return "".join(bases)


def genome_fasta(
    person: SyntheticPerson, capture: int, *, noise: CaptureNoise = DEFAULT_NOISE, flank: int = 20
) -> bytes:
    """Consensus sequences (IUPAC codes at heterozygous sites) around each panel locus.

    One record per locus, named with its 1-based inclusive region ``chrom:start-end``.
    The flanking sequence is synthetic and fixed per locus; a missing call becomes ``N``.
    """
    calls = _noisy_genotypes(person, capture, noise)
    out: list[str] = []
    for index, (locus, call) in enumerate(zip(PANEL, calls, strict=True)):
        seq = list(_window(locus, flank, _rng(0xF1A, index)))
        if call is None:
            base = "N"
        elif call == 0:
            base = locus.ref
        elif call == 2:
            base = locus.alt
        else:
            base = IUPAC_PAIRS[frozenset(locus.ref + locus.alt)]
        seq[flank] = base
        out.append(f">{locus.chrom}:{locus.pos - flank}-{locus.pos + flank}")
        out.append("".join(seq))
    return ("\n".join(out) + "\n").encode()


def genome(
    person: SyntheticPerson,
    capture: int,
    genome_format: Literal["vcf", "fasta"],
    *,
    noise: CaptureNoise = DEFAULT_NOISE,
) -> bytes:
    if genome_format == "vcf":
        return genome_vcf(person, capture, noise=noise)
    return genome_fasta(person, capture, noise=noise)
