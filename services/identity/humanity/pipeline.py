"""Public API: enroll a human, reproduce their keys from a new capture.

``enroll`` and ``reproduce`` take the raw uploads as bytes and return keys and
public helper data; nothing they receive is written anywhere (see docs/humanity.md,
"Privacy"). Errors:

* ``ValidationError("iris_image" | "genome" | "genome_format" | "helper_data", reason)``
  for unusable input,
* :class:`DuplicateHuman` (``AlreadyExists``) when the capture matches a human who is
  already enrolled,
* :class:`CaptureMismatch` (``Unauthenticated``) when a capture does not reproduce the
  key of the given helper data.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from nacl.signing import SigningKey

from services.identity.humanity import features, fuzzy, genome, index, iris, keys
from services.identity.humanity.features import GENOME_ECC, IRIS_ECC
from services.identity.humanity.fuzzy import BchParams
from services.identity.humanity.panel import PANEL_ID
from services.kit.errors import AlreadyExists, Unauthenticated, ValidationError

GenomeFormat = Literal["vcf", "fasta"]

MAGIC = b"KHP1"
SALT_BYTES = 32
_HEAD = struct.Struct(">4s8s32sHHBBHHB")
_HASHES = 3 * 32


class DuplicateHuman(AlreadyExists):
    """The capture matches an enrolled human (``modality`` is 'iris' or 'genome')."""

    def __init__(self, subject: str, modality: str) -> None:
        super().__init__(f"this {modality} is already enrolled")
        self.subject = subject
        self.modality = modality


class CaptureMismatch(Unauthenticated):
    """The capture does not reproduce the key (``modality``: 'iris' or 'genome')."""

    def __init__(self, modality: str) -> None:
        super().__init__(f"the {modality} capture does not match this enrollment")
        self.modality = modality


class EnrolledTemplateStore(Protocol):
    """Where the identity service keeps enrolled helper data (any repository).

    ``index_key`` keys the duplicate-check index (:mod:`.index`); ``candidates`` yields
    ``(subject_id, helper_data)`` of every enrolled human the probe's tags do not rule
    out: the records sharing enough tags with it, and every record stored without tags
    under this key (enrolled before the index, or under another key). The duplicate check
    runs the fuzzy extractor against each (see docs/humanity.md).
    """

    @property
    def index_key(self) -> index.IndexKey: ...

    def candidates(self, probe: index.Probe) -> Iterable[tuple[str, bytes]]: ...


class InMemoryTemplateStore:
    """A dict-backed :class:`EnrolledTemplateStore` for tests, scripts and benchmarks,
    with the same candidate rule as the identity service's table."""

    def __init__(self, index_key: index.IndexKey | None = None) -> None:
        self.index_key = index_key or index.IndexKey(secrets.token_bytes(index.KEY_BYTES))
        self._helpers: dict[str, bytes] = {}
        self._unindexed: list[str] = []
        self._postings: dict[int, list[str]] = {}

    def add(self, subject: str, helper_data: bytes, tags: Iterable[int] | None = None) -> None:
        """``tags`` None: a record without index tags (always a candidate)."""
        self._helpers[subject] = helper_data
        if tags is None:
            self._unindexed.append(subject)
            return
        for tag in tags:
            self._postings.setdefault(tag, []).append(subject)

    def add_enrollment(self, subject: str, enrollment: Enrollment) -> None:
        tags = enrollment.index_tags if enrollment.index_key_id == self.index_key.key_id else None
        self.add(subject, enrollment.helper_data, tags)

    def candidates(self, probe: index.Probe) -> Iterable[tuple[str, bytes]]:
        hits = [(s, tag) for tag in probe.tags() for s in self._postings.get(tag, ())]
        chosen = probe.candidates(hits)
        chosen.update(self._unindexed)
        return [(s, self._helpers[s]) for s in sorted(chosen)]

    def __len__(self) -> int:
        return len(self._helpers)


@dataclass(frozen=True)
class Enrollment:
    """Result of :func:`enroll`. ``helper_data`` is public and must be stored; the
    commitment goes to ``humanity_registry``; the keys are secret."""

    helper_data: bytes = field(repr=False)
    secret_commitment: int
    ed25519_public_key: bytes
    humanity_proof_key: bytes = field(repr=False)
    signing_key: SigningKey = field(repr=False)
    # Duplicate-check index tags (sensitive like the helper data: store, never log) and
    # the id of the key they were made with.
    index_tags: tuple[int, ...] = field(default=(), repr=False)
    index_key_id: str = ""


@dataclass(frozen=True)
class Reproduction:
    """Result of :func:`reproduce`: the same keys as at enrollment."""

    secret_commitment: int
    ed25519_public_key: bytes
    rotation_degrees: float
    humanity_proof_key: bytes = field(repr=False)
    signing_key: SigningKey = field(repr=False)


@dataclass
class HelperData:
    """Parsed helper data (public: positions, offsets, salt and check hashes)."""

    salt: bytes
    iris_ecc: BchParams
    genome_ecc: BchParams
    max_shift: int
    positions: np.ndarray
    iris_offset: np.ndarray
    genome_offset: np.ndarray
    iris_check: bytes
    genome_check: bytes
    secret_check: bytes

    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            MAGIC,
            PANEL_ID,
            self.salt,
            self.iris_ecc.n,
            self.iris_ecc.k,
            self.iris_ecc.blocks,
            self.max_shift,
            self.genome_ecc.n,
            self.genome_ecc.k,
            self.genome_ecc.blocks,
        )
        return b"".join(
            [
                head,
                self.positions.astype(">u2").tobytes(),
                fuzzy.pack(self.iris_offset),
                fuzzy.pack(self.genome_offset),
                self.iris_check,
                self.genome_check,
                self.secret_check,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HelperData:
        def bad(reason: str) -> ValidationError:
            return ValidationError("helper_data", reason)

        if len(data) < _HEAD.size:
            raise bad("too short")
        magic, panel, salt, n, k, blocks, max_shift, gn, gk, gblocks = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise bad("not Keiko humanity helper data (v1)")
        if panel != PANEL_ID:
            raise bad("made with a different SNP panel")
        iris_ecc, genome_ecc = BchParams(n, k, blocks), BchParams(gn, gk, gblocks)
        if (iris_ecc, genome_ecc) != (IRIS_ECC, GENOME_ECC):
            raise bad("made with different error-correcting code parameters")
        if max_shift > iris.CODE_COLS // 4:
            raise bad("rotation range too large")
        sizes = [
            2 * iris_ecc.bits,
            (iris_ecc.bits + 7) // 8,
            (genome_ecc.bits + 7) // 8,
        ]
        if len(data) != _HEAD.size + sum(sizes) + _HASHES:
            raise bad("wrong length")
        at = _HEAD.size
        positions = np.frombuffer(data, ">u2", iris_ecc.bits, at).astype(np.uint16)
        at += sizes[0]
        if int(positions.max()) >= iris.CODE_BITS or len(set(positions.tolist())) != len(positions):
            raise bad("invalid iris bit positions")
        iris_offset = fuzzy.unpack(data[at : at + sizes[1]], iris_ecc.bits)
        at += sizes[1]
        genome_offset = fuzzy.unpack(data[at : at + sizes[2]], genome_ecc.bits)
        at += sizes[2]
        checks = [data[at + 32 * i : at + 32 * (i + 1)] for i in range(3)]
        return cls(
            salt, iris_ecc, genome_ecc, max_shift, positions, iris_offset, genome_offset, *checks
        )


def _check(tag: bytes, salt: bytes, value: bytes) -> bytes:
    return hashlib.sha256(b"keiko/humanity-check/" + tag + b"/v1\x00" + salt + value).digest()


def _secret(salt: bytes, iris_message: bytes, genome_message: bytes) -> bytes:
    return hashlib.sha256(
        b"keiko/humanity-secret/v1\x00" + salt + iris_message + genome_message
    ).digest()


def _as_bytes(messages: np.ndarray) -> bytes:
    """Block messages as :meth:`fuzzy.Trials.combinations` yields them (one byte a bit)."""
    return messages.astype(np.uint8).tobytes()


def _keys(secret: bytes, salt: bytes) -> tuple[bytes, int, SigningKey]:
    proof_key = keys.humanity_proof_key(secret, salt)
    return proof_key, keys.commitment(proof_key), keys.signing_key(proof_key)


@dataclass
class _Capture:
    code: iris.IrisCode
    genome_bits: np.ndarray
    genome_known: np.ndarray

    def wipe(self) -> None:
        self.code.wipe()
        self.genome_bits.fill(0)
        self.genome_known.fill(False)


def _capture(iris_image: bytes, genome_data: bytes, genome_format: str) -> _Capture:
    if genome_format not in genome.GENOME_FORMATS:
        raise ValidationError("genome_format", f"must be one of {', '.join(genome.GENOME_FORMATS)}")
    calls = genome.genotypes(genome_data, genome_format)
    try:
        bits, known = genome.genotype_bits(calls)
    finally:
        calls.fill(0)
    try:
        code = iris.iris_code(iris_image)
    except BaseException:
        bits.fill(0)
        raise
    return _Capture(code, bits, known)


class _Rotations:
    """A capture's iris code at each rotation, rotated once per duplicate check rather
    than once per enrolled record. Holds biometric data: :meth:`wipe` when done."""

    def __init__(self, code: iris.IrisCode) -> None:
        self.code = code
        self._rotated: dict[int, iris.IrisCode] = {}

    def reading(self, positions: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
        if shift == 0:
            return features.iris_bits(self.code, positions)
        rotated = self._rotated.get(shift)
        if rotated is None:
            rotated = self._rotated[shift] = self.code.shifted(shift)
        return features.iris_bits(rotated, positions)

    def wipe(self) -> None:
        for rotated in self._rotated.values():
            rotated.wipe()
        self._rotated.clear()


def _rep_iris(helper: HelperData, code: iris.IrisCode | _Rotations) -> tuple[bytes, int] | None:
    """The iris message and rotation (code columns) if ``code`` reproduces it."""
    if isinstance(code, iris.IrisCode):
        rotations = _Rotations(code)
        try:
            return _rep_iris(helper, rotations)
        finally:
            rotations.wipe()
    shifts = features.shift_order(helper.max_shift)
    readings = [code.reading(helper.positions, s) for s in shifts]
    try:
        trials = fuzzy.rep_trials(helper.iris_ecc, helper.iris_offset, readings)
    finally:
        for bits, known in readings:
            bits.fill(0)
            known.fill(False)
    for reading, shift in enumerate(shifts):
        for message in trials.combinations(reading):
            if secrets.compare_digest(_check(b"iris", helper.salt, message), helper.iris_check):
                return message, shift
    return None


def _rep_genome(helper: HelperData, bits: np.ndarray, known: np.ndarray) -> bytes | None:
    trials = fuzzy.rep_trials(helper.genome_ecc, helper.genome_offset, [(bits, known)])
    for message in trials.combinations(0):
        if secrets.compare_digest(_check(b"genome", helper.salt, message), helper.genome_check):
            return message
    return None


def find_duplicate(
    capture_code: iris.IrisCode,
    genome_bits: np.ndarray,
    genome_known: np.ndarray,
    existing: EnrolledTemplateStore,
    *,
    refuse_genome_match: bool = True,
) -> tuple[str, str] | None:
    """``(subject, modality)`` of the first enrolled human this capture matches.

    Only the records the index cannot rule out are decoded (:mod:`.index`); the decision
    is the fuzzy extractor's, as without the index.
    """
    lookup = index.probe(
        existing.index_key,
        capture_code,
        genome_bits,
        genome_known,
        features.shift_order(features.MAX_SHIFT),
        genome=refuse_genome_match,
    )
    rotations = _Rotations(capture_code)
    try:
        for subject, blob in existing.candidates(lookup):
            try:
                helper = HelperData.from_bytes(blob)
            except ValidationError as error:
                # stored data, not the client's input: a server-side fault (INTERNAL)
                raise RuntimeError(f"enrolled helper data of {subject!r}: {error.reason}") from None
            if refuse_genome_match and _rep_genome(helper, genome_bits, genome_known) is not None:
                return subject, "genome"
            if _rep_iris(helper, rotations) is not None:
                return subject, "iris"
    finally:
        rotations.wipe()
    return None


def enroll(
    iris_image: bytes,
    genome_data: bytes,
    genome_format: GenomeFormat,
    *,
    existing: EnrolledTemplateStore,
    refuse_genome_match: bool = True,
) -> Enrollment:
    """Enroll a new human from an eye image and a genome sample.

    Raises :class:`DuplicateHuman` when the iris (or, with ``refuse_genome_match``, the
    genome) reproduces the key of any helper data in ``existing`` that its index does not
    rule out. The result carries the index tags to store with the helper data.
    """
    capture = _capture(iris_image, genome_data, genome_format)
    iris_messages = genome_messages = None
    try:
        duplicate = find_duplicate(
            capture.code,
            capture.genome_bits,
            capture.genome_known,
            existing,
            refuse_genome_match=refuse_genome_match,
        )
        if duplicate is not None:
            raise DuplicateHuman(*duplicate)
        try:
            positions = features.select_iris_positions(capture.code)
        except ValueError:
            raise ValidationError(
                "iris_image", "too little visible iris texture to enroll; retake the image"
            ) from None
        bits, _known = features.iris_bits(capture.code, positions)
        iris_messages, iris_offset = fuzzy.gen(IRIS_ECC, bits)
        bits.fill(0)
        genome_messages, genome_offset = fuzzy.gen(GENOME_ECC, capture.genome_bits)
        salt = secrets.token_bytes(SALT_BYTES)
        iris_message, genome_message = _as_bytes(iris_messages), _as_bytes(genome_messages)
        secret = _secret(salt, iris_message, genome_message)
        helper = HelperData(
            salt=salt,
            iris_ecc=IRIS_ECC,
            genome_ecc=GENOME_ECC,
            max_shift=features.MAX_SHIFT,
            positions=positions,
            iris_offset=iris_offset,
            genome_offset=genome_offset,
            iris_check=_check(b"iris", salt, iris_message),
            genome_check=_check(b"genome", salt, genome_message),
            secret_check=_check(b"secret", salt, secret),
        )
        proof_key, commitment, signing = _keys(secret, salt)
        tags = index.enrollment_tags(
            existing.index_key, capture.code, capture.genome_bits, capture.genome_known
        )
        return Enrollment(
            helper_data=helper.to_bytes(),
            secret_commitment=commitment,
            ed25519_public_key=bytes(signing.verify_key),
            humanity_proof_key=proof_key,
            signing_key=signing,
            index_tags=tags,
            index_key_id=existing.index_key.key_id,
        )
    finally:
        capture.wipe()
        for array in (iris_messages, genome_messages):
            if array is not None:
                array.fill(0)


def reproduce(
    iris_image: bytes,
    genome_data: bytes,
    genome_format: GenomeFormat,
    helper_data: bytes,
) -> Reproduction:
    """Recover the keys of an enrollment from a new capture of the same human.

    Raises :class:`CaptureMismatch` when the iris or the genome does not reproduce it.
    """
    helper = HelperData.from_bytes(helper_data)
    capture = _capture(iris_image, genome_data, genome_format)
    try:
        genome_message = _rep_genome(helper, capture.genome_bits, capture.genome_known)
        if genome_message is None:
            raise CaptureMismatch("genome")
        found = _rep_iris(helper, capture.code)
        if found is None:
            raise CaptureMismatch("iris")
        iris_message, shift = found
        secret = _secret(helper.salt, iris_message, genome_message)
        if not secrets.compare_digest(_check(b"secret", helper.salt, secret), helper.secret_check):
            raise CaptureMismatch("iris")  # pragma: no cover - both halves checked above
        proof_key, commitment, signing = _keys(secret, helper.salt)
        return Reproduction(
            secret_commitment=commitment,
            ed25519_public_key=bytes(signing.verify_key),
            rotation_degrees=shift * 360.0 / iris.CODE_COLS,
            humanity_proof_key=proof_key,
            signing_key=signing,
        )
    finally:
        capture.wipe()


def warm_up(index_key: index.IndexKey | None = None) -> None:
    """Build the BCH codes and JIT-compile the decoder, and the iris tag table of
    ``index_key`` (the service's) when given: a few seconds of CPU, at startup rather
    than in the first requests."""
    fuzzy.warm_up(IRIS_ECC, GENOME_ECC)
    keys.commitment(bytes(32))  # imports starknet-py's Poseidon
    if index_key is not None:
        index.iris_tagger(index_key).build()
