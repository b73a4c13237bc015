"""Iris pipeline: decode, segment, normalize, Gabor-filter, quantize, match.

Everything works on in-memory buffers. The steps, each a function so tests and the
evaluation can look at them:

1. :func:`decode_image` - ``cv2.imdecode`` of the uploaded bytes to 8-bit grayscale,
   with size and dimension limits.
2. :func:`segment` - the pupil is the darkest large round blob (threshold, external
   contour, circularity and fill checks); the limbus is found with Daugman's
   integro-differential operator: the circle (centre near the pupil's, radius 1.4 to
   4.5 pupil radii) that maximizes the Gaussian-smoothed radial derivative of the mean
   intensity along its lateral arcs (the arcs avoid the eyelids). An image with no
   such pupil or no limbus edge is refused with ``ValidationError("iris_image", ...)``.
3. :func:`normalize` - Daugman's rubber sheet: the ring between the two (not
   necessarily concentric) circles is resampled to a fixed ``RADIAL x ANGULAR``
   rectangle, column ``j`` at angle ``2*pi*j/ANGULAR``, so an eye rotation becomes a
   circular column shift. The noise mask marks samples outside the image, specular
   reflections (saturated pixels, dilated) and eyelids (pixels much brighter than the
   iris, propagated outwards in each column since lids come in from the outside).
4. :func:`encode` - a bank of complex 2-D Gabor filters (even and odd kernels from
   ``cv2.getGaborKernel``, zero DC) is applied with circular padding in angle; the
   phase of each response is quantized to two bits (signs of the real and imaginary
   parts) on a sampling grid: the binary iris code, with its mask and the response
   magnitudes (used by the fuzzy extractor to pick reliable bits).
5. :func:`hamming_distance` - masked fractional Hamming distance, minimized over
   circular shifts (rotation compensation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from services.kit.errors import ValidationError

FIELD = "iris_image"

MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Largest accepted upload (compressed bytes)."""
MAX_IMAGE_SIDE = 4096
MIN_IMAGE_SIDE = 96
WORK_SIDE = 480
"""Images are scaled so their longer side is at most this before segmentation."""

RADIAL = 32
ANGULAR = 256
ROW_STEP = 2
COL_STEP = 2
CODE_ROWS = RADIAL // ROW_STEP
CODE_COLS = ANGULAR // COL_STEP
INNER_MARGIN = 0.04
OUTER_MARGIN = 0.12


@dataclass(frozen=True)
class GaborSpec:
    wavelength: float
    sigma_x: float
    aspect: float  # sigma_y / sigma_x
    orientation: float  # radians; 0 = stripes across the angular axis


GABOR_BANK: tuple[GaborSpec, ...] = (
    GaborSpec(wavelength=8.0, sigma_x=3.0, aspect=0.8, orientation=0.0),
    GaborSpec(wavelength=14.0, sigma_x=5.0, aspect=0.8, orientation=0.0),
)
N_FILTERS = len(GABOR_BANK)
CODE_BITS = N_FILTERS * CODE_ROWS * CODE_COLS * 2
"""Bits in an iris code: filter x row x column x (real, imaginary)."""


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Segmentation:
    pupil: Circle
    iris: Circle
    limbus_contrast: float


@dataclass
class IrisCode:
    """A binary iris code. Arrays have shape ``(N_FILTERS, CODE_ROWS, CODE_COLS, 2)``.

    ``bits`` are the phase bits, ``mask`` is True where a bit is usable, ``strength``
    the magnitude of the filter response behind each bit (|real| or |imag|, scaled by
    the filter's typical response), used to choose reliable bits. The object holds
    biometric data: call :meth:`wipe` when done.
    """

    bits: np.ndarray
    mask: np.ndarray
    strength: np.ndarray
    segmentation: Segmentation

    def shifted(self, columns: int) -> IrisCode:
        """The code of the same eye rotated by ``columns`` code columns."""
        return IrisCode(
            np.roll(self.bits, columns, axis=2),
            np.roll(self.mask, columns, axis=2),
            np.roll(self.strength, columns, axis=2),
            self.segmentation,
        )

    def wipe(self) -> None:
        for array in (self.bits, self.mask, self.strength):
            array.fill(0)


def decode_image(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode image bytes (PNG, JPEG, BMP, TIFF...) to an 8-bit grayscale array."""
    if len(data) == 0:
        raise ValidationError(FIELD, "empty upload")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(
            FIELD, f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} bytes"
        )
    _check_png_header(data)
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValidationError(FIELD, "not a decodable image (expected PNG, JPEG, BMP or TIFF)")
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        image.fill(0)
        raise ValidationError(
            FIELD, f"image is {w}x{h}; each side must be at least {MIN_IMAGE_SIDE} pixels"
        )
    if max(h, w) > MAX_IMAGE_SIDE:
        image.fill(0)
        raise ValidationError(
            FIELD, f"image is {w}x{h}; each side must be at most {MAX_IMAGE_SIDE} pixels"
        )
    return image


def _check_png_header(data: bytes | bytearray | memoryview) -> None:
    """Refuse PNG decompression bombs before decoding (dimensions are in the IHDR)."""
    head = bytes(data[:24])
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        w = int.from_bytes(head[16:20], "big")
        h = int.from_bytes(head[20:24], "big")
        if max(w, h) > MAX_IMAGE_SIDE:
            raise ValidationError(
                FIELD, f"image is {w}x{h}; each side must be at most {MAX_IMAGE_SIDE} pixels"
            )


def _to_work_size(image: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = image.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        resized = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
        return resized, scale
    return image.copy(), 1.0


def _find_pupil(gray: np.ndarray) -> Circle:
    h, w = gray.shape
    # grey opening removes the small bright specular reflections inside the pupil
    smooth = cv2.morphologyEx(
        cv2.medianBlur(gray, 5),
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11)),
    )
    low = float(np.percentile(smooth, 0.5))
    median = float(np.median(smooth))
    if median - low < 25:
        raise ValidationError(FIELD, "no pupil found: the image has no dark region")
    min_area = math.pi * (min(h, w) * 0.03) ** 2
    max_area = math.pi * (min(h, w) * 0.30) ** 2
    best: tuple[float, Circle] | None = None
    for frac in (0.1, 0.18, 0.26, 0.34):
        thr = low + frac * (median - low)
        binary = cv2.morphologyEx(
            (smooth <= thr).astype(np.uint8),
            cv2.MORPH_OPEN,
            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)),
        )
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for contour in contours:
            area = cv2.contourArea(contour)
            if not min_area <= area <= max_area:
                continue
            hull = cv2.convexHull(contour)
            hull_area = cv2.contourArea(hull)
            (_x, _y), r = cv2.minEnclosingCircle(hull)
            fill = hull_area / (math.pi * r * r)
            solidity = area / max(hull_area, 1.0)
            if fill < 0.72 or solidity < 0.85:
                continue
            moments = cv2.moments(hull)
            cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
            score = fill + solidity
            circle = Circle(float(cx), float(cy), math.sqrt(hull_area / math.pi))
            if best is None or score > best[0]:
                best = (score, circle)
    if best is None:
        raise ValidationError(FIELD, "no pupil found: no dark, round region of plausible size")
    return best[1]


def _refine_pupil(gray: np.ndarray, pupil: Circle) -> Circle:
    """Integro-differential refinement of the pupil circle found by thresholding.

    Dark iris crypts touching the pupil can join its thresholded blob and pull the centre
    off; the circle with the steepest dark-to-bright step of the mean intensity along it
    (centre within 15%, radius within 25% of the first guess) is the pupil's edge.
    """
    work = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0)
    radii = np.arange(0.75 * pupil.r, 1.25 * pupil.r, 0.5, dtype=np.float32)
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False, dtype=np.float32)
    span = max(1, round(0.15 * pupil.r))
    cap = float(np.median(work))
    best = (-np.inf, pupil)
    for dy in range(-span, span + 1):
        for dx in range(-span, span + 1):
            cx, cy = pupil.x + dx, pupil.y + dy
            polar = _polar(work, cx, cy, radii, angles)
            if (polar < 0).any():
                continue
            # clipped: a saturated reflection on the circle must not dominate its mean
            profile = np.minimum(polar, cap).mean(axis=1)
            deriv = profile[2:] - profile[:-2]
            k = int(np.argmax(deriv))
            if deriv[k] > best[0]:
                best = (float(deriv[k]), Circle(cx, cy, float(radii[k + 1])))
    return best[1]


def _polar(
    gray: np.ndarray, cx: float, cy: float, radii: np.ndarray, angles: np.ndarray
) -> np.ndarray:
    map_x = (cx + radii[:, None] * np.cos(angles)[None, :]).astype(np.float32)
    map_y = (cy + radii[:, None] * np.sin(angles)[None, :]).astype(np.float32)
    return cv2.remap(
        gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1
    )


def _find_limbus(gray: np.ndarray, pupil: Circle) -> tuple[Circle, float]:
    """Daugman's integro-differential operator over lateral arcs."""
    h, w = gray.shape
    work = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.5)
    r_min, r_max = 1.4 * pupil.r, min(4.5 * pupil.r, 0.6 * max(h, w))
    radii = np.arange(r_min, r_max, 1.0, dtype=np.float32)
    if radii.size < 8:
        raise ValidationError(FIELD, "no iris found: the pupil is too large for the image")
    arcs = np.deg2rad(
        np.concatenate([np.arange(-35, 20, 3), np.arange(160, 215, 3)]).astype(np.float32)
    )
    best: tuple[float, Circle] | None = None
    step = max(1.0, pupil.r * 0.06)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cx, cy = pupil.x + dx * step, pupil.y + dy * step
            polar = _polar(work, cx, cy, radii, arcs)
            valid = polar >= 0
            counts = valid.sum(axis=1)
            if np.any(counts < arcs.size * 0.5):
                # the circle leaves the image on both sides before r_max: stop there
                usable = int(np.argmax(counts < arcs.size * 0.5))
            else:
                usable = radii.size
            if usable < 8:
                continue
            profile = np.where(valid, polar, 0).sum(axis=1)[:usable] / np.maximum(
                counts[:usable], 1
            )
            deriv = np.gradient(cv2.GaussianBlur(profile.reshape(-1, 1), (1, 0), 2.0).ravel())
            k = int(np.argmax(deriv))
            if k < 2 or k >= usable - 2:
                continue
            score = float(deriv[k])
            if best is None or score > best[0]:
                best = (score, Circle(cx, cy, float(radii[k])))
    if best is None:
        raise ValidationError(FIELD, "no iris found: no limbus edge around the pupil")
    return best[1], best[0]


MIN_PUPIL_CONTRAST = 45.0
"""Grey levels between the pupil and the iris just around it."""
MIN_LIMBUS_CONTRAST = 5.0
"""Smoothed radial derivative (grey levels per pixel) at the limbus."""


def _pupil_contrast(gray: np.ndarray, pupil: Circle) -> float:
    radii = np.linspace(0.1, 0.7, 8, dtype=np.float32) * pupil.r
    around = np.linspace(1.25, 1.6, 8, dtype=np.float32) * pupil.r
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False, dtype=np.float32)
    work = gray.astype(np.float32)
    inside = _polar(work, pupil.x, pupil.y, radii, angles)
    outside = _polar(work, pupil.x, pupil.y, around, angles)
    inside, outside = inside[inside >= 0], outside[outside >= 0]
    if inside.size == 0 or outside.size == 0:
        return 0.0
    return float(np.median(outside) - np.median(inside))


def segment(gray: np.ndarray) -> Segmentation:
    """Locate pupil and limbus in a grayscale image (in its own pixel coordinates)."""
    work, scale = _to_work_size(gray)
    try:
        pupil = _refine_pupil(work, _find_pupil(work))
        dark = _pupil_contrast(work, pupil)
        if dark < MIN_PUPIL_CONTRAST:
            raise ValidationError(
                FIELD, f"no pupil found: the darkest round region is not dark enough ({dark:.0f})"
            )
        iris, contrast = _find_limbus(work, pupil)
        if contrast < MIN_LIMBUS_CONTRAST:
            raise ValidationError(FIELD, "no iris found: no clear limbus edge around the pupil")
    finally:
        if scale < 1.0:
            work.fill(0)
    ratio = pupil.r / iris.r
    if not 0.15 <= ratio <= 0.75:
        raise ValidationError(FIELD, f"no plausible iris: pupil/iris radius ratio {ratio:.2f}")
    if math.hypot(pupil.x - iris.x, pupil.y - iris.y) > 0.5 * iris.r:
        raise ValidationError(FIELD, "no plausible iris: pupil is not inside the iris")
    s = 1.0 / scale
    return Segmentation(
        Circle(pupil.x * s, pupil.y * s, pupil.r * s),
        Circle(iris.x * s, iris.y * s, iris.r * s),
        contrast,
    )


def normalize(gray: np.ndarray, seg: Segmentation) -> tuple[np.ndarray, np.ndarray]:
    """Rubber-sheet normalization: ``(image RADIAL x ANGULAR float32, valid mask bool)``."""
    theta = (2 * np.pi * np.arange(ANGULAR) / ANGULAR).astype(np.float32)
    rho = np.linspace(INNER_MARGIN, 1 - OUTER_MARGIN, RADIAL, dtype=np.float32)[:, None]
    px = seg.pupil.x + seg.pupil.r * np.cos(theta)
    py = seg.pupil.y + seg.pupil.r * np.sin(theta)
    ix = seg.iris.x + seg.iris.r * np.cos(theta)
    iy = seg.iris.y + seg.iris.r * np.sin(theta)
    map_x = ((1 - rho) * px + rho * ix).astype(np.float32)
    map_y = ((1 - rho) * py + rho * iy).astype(np.float32)
    h, w = gray.shape
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    sheet = cv2.remap(
        gray.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    valid = inside & (sheet < 235)  # specular reflections saturate
    valid = cv2.erode(
        valid.astype(np.uint8), np.ones((3, 5), np.uint8), borderType=cv2.BORDER_REPLICATE
    ).astype(bool)
    reference = sheet[valid]
    if reference.size < sheet.size * 0.2:
        sheet.fill(0)
        raise ValidationError(FIELD, "iris is mostly occluded or outside the image")
    # eyelid skin is brighter than the iris on average and smoother: compare the
    # local mean and local deviation (windows wrap around in angle) with the iris's
    pad = 8
    wrapped = np.pad(np.where(valid, sheet, np.nan), ((0, 0), (pad, pad)), mode="wrap")
    wrapped = np.where(np.isnan(wrapped), float(np.median(reference)), wrapped).astype(np.float32)
    local_mean = cv2.blur(wrapped, (9, 5), borderType=cv2.BORDER_REFLECT)
    local_sq = cv2.blur(wrapped * wrapped, (9, 5), borderType=cv2.BORDER_REFLECT)
    local_std = np.sqrt(np.maximum(local_sq - local_mean * local_mean, 0))
    local_mean, local_std = local_mean[:, pad:-pad], local_std[:, pad:-pad]
    inner = local_mean[: RADIAL // 3][valid[: RADIAL // 3]]
    med = float(np.median(inner)) if inner.size else float(np.median(local_mean))
    texture = float(np.median(local_std[valid]))
    lid = (local_mean > med + 40.0) | ((local_mean > med + 20.0) & (local_std < 0.5 * texture))
    lid = cv2.morphologyEx(lid.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 3), np.uint8))
    lid = cv2.dilate(lid, np.ones((3, 5), np.uint8)).astype(bool)
    # eyelids come in from the limbus: once a column is occluded, so is everything outside
    lid = np.maximum.accumulate(lid, axis=0)
    valid &= ~lid
    if valid.mean() < 0.3:
        sheet.fill(0)
        raise ValidationError(FIELD, "iris is mostly occluded (eyelids or reflections)")
    return sheet, valid


def _kernels() -> list[tuple[np.ndarray, np.ndarray, float]]:
    bank = []
    for spec in GABOR_BANK:
        half = math.ceil(3 * spec.sigma_x)
        size = (2 * half + 1, 2 * math.ceil(3 * spec.sigma_x * spec.aspect) + 1)
        even = cv2.getGaborKernel(
            size, spec.sigma_x, spec.orientation, spec.wavelength, spec.aspect, 0.0, cv2.CV_32F
        )
        odd = cv2.getGaborKernel(
            size, spec.sigma_x, spec.orientation, spec.wavelength, spec.aspect,
            math.pi / 2, cv2.CV_32F,
        )  # fmt: skip
        even -= even.mean()
        odd -= odd.mean()
        norm = float(np.sqrt((even**2).sum()))
        bank.append((even / norm, odd / norm, float(half)))
    return bank


_BANK = _kernels()


ROW_NORMALIZE = True


def encode(sheet: np.ndarray, valid: np.ndarray, seg: Segmentation) -> IrisCode:
    """Gabor phase quantization of a normalized iris to an :class:`IrisCode`."""
    fill = float(sheet[valid].mean())
    work = np.where(valid, sheet, fill).astype(np.float32)
    if ROW_NORMALIZE:
        # remove the radial intensity profile (collarette, darkening towards the limbus):
        # it is shared by many eyes and would correlate their codes
        counts = np.maximum(valid.sum(axis=1, keepdims=True), 1)
        row_mean = np.where(valid, sheet, 0).sum(axis=1, keepdims=True) / counts
        work = np.where(valid, sheet - row_mean, 0).astype(np.float32)
    else:
        work -= fill
    spread = float(work[valid].std()) + 1e-6
    work /= spread
    pad_x = max(int(k[0].shape[1]) for k in _BANK) // 2 + 1
    pad_y = max(int(k[0].shape[0]) for k in _BANK) // 2 + 1
    padded = np.pad(work, ((0, 0), (pad_x, pad_x)), mode="wrap")
    padded = np.pad(padded, ((pad_y, pad_y), (0, 0)), mode="reflect")
    bits = np.zeros((N_FILTERS, CODE_ROWS, CODE_COLS, 2), np.uint8)
    strength = np.zeros((N_FILTERS, CODE_ROWS, CODE_COLS, 2), np.float32)
    rows = slice(pad_y + ROW_STEP // 2, pad_y + RADIAL, ROW_STEP)
    cols = slice(pad_x, pad_x + ANGULAR, COL_STEP)
    for f, (even, odd, _) in enumerate(_BANK):
        re = cv2.filter2D(padded, cv2.CV_32F, even)[rows, cols]
        im = cv2.filter2D(padded, cv2.CV_32F, odd)[rows, cols]
        bits[f, :, :, 0] = re > 0
        bits[f, :, :, 1] = im > 0
        scale = float(np.sqrt(np.mean(re * re + im * im))) + 1e-6
        strength[f, :, :, 0] = np.abs(re) / scale
        strength[f, :, :, 1] = np.abs(im) / scale
        re.fill(0)
        im.fill(0)
    sampled_valid = valid[ROW_STEP // 2 :: ROW_STEP, ::COL_STEP]
    mask = np.broadcast_to(sampled_valid[None, :, :, None], bits.shape).copy()
    work.fill(0)
    padded.fill(0)
    return IrisCode(bits, mask, strength, seg)


def iris_code(image_bytes: bytes | bytearray | memoryview) -> IrisCode:
    """The whole pipeline from uploaded bytes to an iris code; intermediates are wiped."""
    gray = decode_image(image_bytes)
    try:
        seg = segment(gray)
        sheet, valid = normalize(gray, seg)
        try:
            return encode(sheet, valid, seg)
        finally:
            sheet.fill(0)
            valid.fill(False)
    finally:
        gray.fill(0)


MAX_SHIFT_COLUMNS = 8
"""Rotation compensation range in code columns (one column = 360/CODE_COLS degrees)."""


def hamming_distance(
    a: IrisCode, b: IrisCode, max_shift: int = MAX_SHIFT_COLUMNS
) -> tuple[float, int]:
    """Masked fractional Hamming distance minimized over circular shifts of ``b``.

    Returns ``(distance, shift)``. With no jointly valid bit the distance is 1.0.
    """
    best = (1.0, 0)
    for shift in range(-max_shift, max_shift + 1):
        bits = np.roll(b.bits, shift, axis=2)
        mask = np.roll(b.mask, shift, axis=2) & a.mask
        n = int(mask.sum())
        if n == 0:
            continue
        hd = float(((a.bits ^ bits) & mask).sum()) / n
        if hd < best[0]:
            best = (hd, shift)
    return best
