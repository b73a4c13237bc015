"""Duplicate-check index: keyed locality-sensitive tags over the iris and the genome.

The fuzzy extractor's helper data can only be tested one record at a time (``Rep``),
so the duplicate check used to decode the new capture against every enrolled human.
This index lets it decode only the few records that could match: at enrollment a
handful of short **bands** of the capture (fixed sets of iris-code bits or panel
genotypes, the same positions for everybody) are turned into tags
``HMAC-SHA256(index key, band, band value)``, truncated to 64 bits, and stored next to
the helper data. A new capture computes the same tags and looks them up; records that
share enough tags are candidates and go through the full fuzzy-extractor check, which
alone decides. So a false candidate costs one decode, never a wrong answer; a record
the index misses is a duplicate not detected (see docs/humanity.md, "Index", for the
measured recall and what the tags leak).

Iris: :data:`IRIS_BANDS` bands of :data:`IRIS_BAND_BITS` bits each, from the
longer-wavelength filter (fewer genuine bit flips) on the inner half of the iris
(rarely under an eyelid). At enrollment the :data:`IRIS_STORED_BANDS` visible bands
whose weakest bit has the strongest filter response are stored (unreliable bits flip
between captures). A new capture, at each rotation the fuzzy extractor tries, takes its
:data:`IRIS_PROBE_BANDS` most reliable visible bands and also the variants of each with
its :data:`IRIS_PROBE_FLIPS` weakest bits flipped (multi-probe). An enrolled record is
an iris candidate when at least :data:`IRIS_MIN_VOTES` of its bands match at one
rotation.

Genome: :data:`GENOME_BANDS` bands of :data:`GENOME_BAND_LOCI` panel loci; a band is
used only when every one of its loci is called. One matching band makes a candidate
(genotype calls rarely differ: a band of 16 loci survives 1% wrong and 1% missing
calls with probability ~0.72, and 16 bands all fail with probability ~1e-9).

Band positions are derived from SHA-256 (not from NumPy's generators, whose streams may
change between versions), so every process and version computes the same tags;
:data:`INDEX_VERSION` and the key make the key id stored with each record, and records
tagged under another version or key are treated as unindexed (always checked).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np

from services.identity.humanity import iris

INDEX_VERSION = 1
IRIS_FILTER = 1
IRIS_ROWS = iris.CODE_ROWS // 2
IRIS_BANDS = 256
IRIS_BAND_BITS = 10
IRIS_STORED_BANDS = 48
IRIS_PROBE_BANDS = 64
IRIS_PROBE_FLIPS = 2
IRIS_MIN_VOTES = 3
GENOME_BANDS = 16
GENOME_BAND_LOCI = 16
KEY_BYTES = 32

_DOMAIN = b"keiko/humanity-index/v%d\x00" % INDEX_VERSION


@dataclass(frozen=True)
class IndexKey:
    """The server-side secret the tags are keyed with (never stored with the tags)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < KEY_BYTES:
            raise ValueError(f"the humanity index key needs at least {KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        """Public id of (index version, key): stored with each record's tags."""
        return hashlib.sha256(_DOMAIN + b"key-id\x00" + self.secret).hexdigest()[:16]

    def tag(self, kind: bytes, band: int, value: bytes) -> int:
        mac = hmac.digest(self.secret, _DOMAIN + kind + band.to_bytes(2, "big") + value, "sha256")
        return int.from_bytes(mac[:8], "big", signed=True)


# A key's duplicate checks after which its full iris tag table is built (see IrisTagger).
TABLE_AFTER_PROBES = 8


class IrisTagger:
    """The iris tags of one key: ``HMAC(key, "iris", band, value)`` for band values.

    An iris band has only ``2**IRIS_BAND_BITS`` values, so the tags of all of them
    (``IRIS_BANDS * 1024``, 2 MiB) make a table: a probe's ~4 000 tags are then one array
    lookup instead of ~4 000 HMACs (~15 ms). Building the table costs ~1 s of CPU, so it
    is built by :meth:`build` (the service's warm-up) or once the key has served
    :data:`TABLE_AFTER_PROBES` probes; until then each tag is an HMAC from the band's
    precomputed HMAC state. Both give :meth:`IndexKey.tag`'s values.
    """

    def __init__(self, key: IndexKey) -> None:
        self._key = key
        self._prefixes: dict[int, Any] = {}
        self._table: np.ndarray | None = None
        self._probes = 0
        self._building = threading.Lock()

    def _prefix(self, band: int) -> Any:
        prefix = self._prefixes.get(band)
        if prefix is None:
            message = _DOMAIN + b"iris\x00" + band.to_bytes(2, "big")
            prefix = self._prefixes[band] = hmac.new(self._key.secret, message, "sha256")
        return prefix

    def _tag(self, band: int, value: int) -> int:
        mac = self._prefix(band).copy()
        mac.update(value.to_bytes(2, "big"))
        return int.from_bytes(mac.digest()[:8], "big", signed=True)

    def build(self) -> None:
        """Compute the full table now (about a second; idempotent, thread-safe)."""
        if self._table is not None or not self._building.acquire(blocking=False):
            return  # built, or being built by another thread (which the caller need not wait for)
        try:
            table = np.empty((IRIS_BANDS, 1 << IRIS_BAND_BITS), np.int64)
            for band in range(IRIS_BANDS):
                table[band] = [self._tag(band, value) for value in range(1 << IRIS_BAND_BITS)]
            table.setflags(write=False)
            self._table = table
        finally:
            self._building.release()

    def count_probe(self) -> None:
        """One more duplicate check under this key: build the table after a few."""
        if self._table is None:
            self._probes += 1
            if self._probes >= TABLE_AFTER_PROBES:
                self.build()

    def lookup(self, bands: np.ndarray, values: np.ndarray) -> list[int]:
        """Tags of ``(bands[i], values[i])``, broadcast together and flattened."""
        table = self._table
        if table is not None:
            return table[bands, values].ravel().tolist()
        band_of_each = np.broadcast_to(bands, values.shape).ravel().tolist()
        pairs = zip(band_of_each, values.ravel().tolist(), strict=True)
        return [self._tag(band, value) for band, value in pairs]


@lru_cache(maxsize=8)
def iris_tagger(key: IndexKey) -> IrisTagger:
    """The process's :class:`IrisTagger` of ``key`` (a few keys at a time: tests use many)."""
    return IrisTagger(key)


def _draw(label: bytes, population: int, count: int) -> list[int]:
    """``count`` distinct integers below ``population``, fixed by ``label`` (SHA-256)."""
    chosen: list[int] = []
    for counter in itertools.count():
        digest = hashlib.sha256(_DOMAIN + label + counter.to_bytes(4, "big")).digest()
        value = int.from_bytes(digest[:8], "big") % population
        if value not in chosen:
            chosen.append(value)
            if len(chosen) == count:
                return chosen
    raise AssertionError("unreachable")  # pragma: no cover


@cache
def iris_bands() -> np.ndarray:
    """(IRIS_BANDS, IRIS_BAND_BITS) flat positions into an iris code's bits."""
    per_filter = IRIS_ROWS * iris.CODE_COLS * 2
    bands = np.zeros((IRIS_BANDS, IRIS_BAND_BITS), np.int64)
    for band in range(IRIS_BANDS):
        picks = _draw(b"iris-band" + band.to_bytes(2, "big"), per_filter, IRIS_BAND_BITS)
        for bit, pick in enumerate(picks):
            row, rest = divmod(pick, iris.CODE_COLS * 2)
            col, part = divmod(rest, 2)
            bands[band, bit] = np.ravel_multi_index(
                (IRIS_FILTER, row, col, part), (iris.N_FILTERS, iris.CODE_ROWS, iris.CODE_COLS, 2)
            )
    bands.setflags(write=False)
    return bands


@cache
def genome_bands(loci: int) -> np.ndarray:
    """(GENOME_BANDS, GENOME_BAND_LOCI) panel locus indices."""
    labels = [b"genome-band" + band.to_bytes(2, "big") for band in range(GENOME_BANDS)]
    bands = np.array([_draw(label, loci, GENOME_BAND_LOCI) for label in labels], np.int64)
    bands.setflags(write=False)
    return bands


_WEIGHTS = (1 << np.arange(IRIS_BAND_BITS)).astype(np.int64)


@cache
def _rolled_iris_bands(shift: int) -> np.ndarray:
    """:func:`iris_bands` read from the code rolled by ``shift`` columns (``np.roll``
    along the columns), as positions into the unrolled code."""
    shape = (iris.N_FILTERS, iris.CODE_ROWS, iris.CODE_COLS, 2)
    fil, row, col, part = np.unravel_index(iris_bands(), shape)
    rolled = np.ravel_multi_index((fil, row, (col - shift) % iris.CODE_COLS, part), shape)
    rolled.setflags(write=False)
    return rolled


def _iris_readings(code: iris.IrisCode, shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band at ``shift``: bit values, all-visible flag, bit strengths (0 if hidden)."""
    positions = _rolled_iris_bands(shift)
    bits = code.bits.ravel()[positions]
    mask = code.mask.ravel()[positions]
    strength = np.where(mask, code.strength.ravel()[positions], 0.0)
    return bits, mask.all(axis=1), strength


def _most_reliable(visible: np.ndarray, strength: np.ndarray, count: int) -> list[int]:
    score = np.where(visible, strength.min(axis=1), -1.0)
    order = np.argsort(-score, kind="stable")[:count]
    return [int(b) for b in order if visible[b]]


def _band_values(bits: np.ndarray) -> np.ndarray:
    """Each band's value (bit ``i`` weighs ``2**i``): its column in :class:`IrisTagger`'s table."""
    return bits.astype(np.int64) @ _WEIGHTS


# Multi-probe: every subset of a band's IRIS_PROBE_FLIPS weakest bits (the empty one first)
_FLIP_SUBSETS = np.array(
    [
        [int(i in subset) for i in range(IRIS_PROBE_FLIPS)]
        for r in range(IRIS_PROBE_FLIPS + 1)
        for subset in itertools.combinations(range(IRIS_PROBE_FLIPS), r)
    ],
    np.int64,
)


def _genome_tags(key: IndexKey, bits: np.ndarray, known: np.ndarray) -> list[int]:
    """Tags of the genome bands whose loci are all called (2 bits per locus)."""
    calls = bits.reshape(-1, 2)
    called: np.ndarray = np.asarray(known.reshape(-1, 2).all(axis=1))
    tags = []
    for band, loci in enumerate(genome_bands(len(calls))):
        if called[loci].all():
            tags.append(key.tag(b"genome\x00", band, np.packbits(calls[loci].ravel()).tobytes()))
    return tags


def enrollment_tags(
    key: IndexKey, code: iris.IrisCode, genome_bits: np.ndarray, genome_known: np.ndarray
) -> tuple[int, ...]:
    """The tags stored with a new enrollment (iris at rotation 0, and genome)."""
    bits, visible, strength = _iris_readings(code, 0)
    values = np.zeros(0, np.int64)
    try:
        chosen = np.array(_most_reliable(visible, strength, IRIS_STORED_BANDS), np.int64)
        values = _band_values(bits[chosen])
        tags = iris_tagger(key).lookup(chosen, values)
    finally:
        bits.fill(0)
        strength.fill(0)
        values.fill(0)
    tags += _genome_tags(key, genome_bits, genome_known)
    return tuple(dict.fromkeys(tags))


@dataclass
class Probe:
    """A new capture's lookup tags: iris tag -> rotations (code columns) it was read at,
    and the genome tags (empty when genome matches are not refused)."""

    iris: dict[int, list[int]]
    genome: set[int]

    def tags(self) -> list[int]:
        return list(self.iris.keys() | self.genome)

    def candidates(self, hits: Iterable[tuple[str, int]]) -> set[str]:
        """Subjects among ``(subject, stored tag)`` hits that must be fully checked."""
        votes: dict[tuple[str, int], int] = defaultdict(int)
        chosen: set[str] = set()
        for subject, tag in set(hits):
            if tag in self.genome:
                chosen.add(subject)
            for shift in self.iris.get(tag, ()):
                votes[(subject, shift)] += 1
        chosen.update(s for (s, _), n in votes.items() if n >= IRIS_MIN_VOTES)
        return chosen


def probe(
    key: IndexKey,
    code: iris.IrisCode,
    genome_bits: np.ndarray,
    genome_known: np.ndarray,
    shifts: Iterable[int],
    *,
    genome: bool = True,
) -> Probe:
    """Lookup tags of a new capture at each of ``shifts``."""
    iris_tags: dict[int, list[int]] = defaultdict(list)
    tags_of = iris_tagger(key)
    tags_of.count_probe()
    for shift in shifts:
        bits, visible, strength = _iris_readings(code, shift)
        values = variants = np.zeros(0, np.int64)
        try:
            chosen = np.array(_most_reliable(visible, strength, IRIS_PROBE_BANDS), np.int64)
            weakest = np.argsort(strength[chosen], axis=1, kind="stable")[:, :IRIS_PROBE_FLIPS]
            values = _band_values(bits[chosen])
            # (band, flip subset): the band's value with that subset of its weakest bits flipped
            variants = values[:, None] ^ (_WEIGHTS[weakest] @ _FLIP_SUBSETS.T)
            for tag in set(tags_of.lookup(chosen[:, None], variants)):
                iris_tags[tag].append(shift)
        finally:
            bits.fill(0)
            strength.fill(0)
            values.fill(0)
            variants.fill(0)
    genome_tags = set(_genome_tags(key, genome_bits, genome_known)) if genome else set()
    return Probe(dict(iris_tags), genome_tags)
