"""End-to-end behaviour of the public API on synthetic people."""

from __future__ import annotations

import builtins
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from nacl.signing import VerifyKey

from services.identity.humanity import (
    CaptureMismatch,
    DuplicateHuman,
    InMemoryTemplateStore,
    enroll,
    features,
    genome,
    index,
    iris,
    reproduce,
)
from services.identity.humanity import pipeline as pl
from services.identity.humanity import synthetic as syn
from services.kit.errors import AlreadyExists, Unauthenticated, ValidationError

SEED = 424242
STARK_PRIME = 2**251 + 17 * 2**192 + 1


@pytest.fixture(scope="module")
def ana() -> syn.SyntheticPerson:
    return syn.make_person(SEED, 1)


@pytest.fixture(scope="module")
def bruno() -> syn.SyntheticPerson:
    return syn.make_person(SEED, 2)


@pytest.fixture(scope="module")
def ana_enrolled(ana: syn.SyntheticPerson) -> pl.Enrollment:
    return enroll(
        syn.iris_image(ana, 0), syn.genome_vcf(ana, 0), "vcf", existing=InMemoryTemplateStore()
    )


def test_recapture_reproduces_the_same_ed25519_key(
    ana: syn.SyntheticPerson, ana_enrolled: pl.Enrollment
) -> None:
    for capture, fmt in ((1, "fasta"), (2, "vcf"), (3, "fasta")):
        got = reproduce(
            syn.iris_image(ana, capture),
            syn.genome(ana, capture, fmt),  # type: ignore[arg-type]
            fmt,  # type: ignore[arg-type]
            ana_enrolled.helper_data,
        )
        assert got.ed25519_public_key == ana_enrolled.ed25519_public_key
        assert got.secret_commitment == ana_enrolled.secret_commitment
        assert got.humanity_proof_key == ana_enrolled.humanity_proof_key


def test_keys_are_usable_and_commitment_is_a_felt(ana_enrolled: pl.Enrollment) -> None:
    signed = ana_enrolled.signing_key.sign(b"xAPI statement")
    VerifyKey(ana_enrolled.ed25519_public_key).verify(signed)
    assert 0 < ana_enrolled.secret_commitment < STARK_PRIME
    assert len(ana_enrolled.humanity_proof_key) == 32
    assert "humanity_proof_key" not in repr(ana_enrolled)


def test_other_person_gets_another_key_and_cannot_reproduce(
    bruno: syn.SyntheticPerson, ana: syn.SyntheticPerson, ana_enrolled: pl.Enrollment
) -> None:
    theirs = enroll(
        syn.iris_image(bruno, 0), syn.genome_vcf(bruno, 0), "vcf", existing=InMemoryTemplateStore()
    )
    assert theirs.ed25519_public_key != ana_enrolled.ed25519_public_key
    assert theirs.secret_commitment != ana_enrolled.secret_commitment
    with pytest.raises(CaptureMismatch) as caught:
        reproduce(
            syn.iris_image(bruno, 1), syn.genome_vcf(bruno, 1), "vcf", ana_enrolled.helper_data
        )
    assert isinstance(caught.value, Unauthenticated)
    # Ana's genome with Bruno's eye is not Ana either
    with pytest.raises(CaptureMismatch) as caught:
        reproduce(syn.iris_image(bruno, 1), syn.genome_vcf(ana, 1), "vcf", ana_enrolled.helper_data)
    assert caught.value.modality == "iris"


def test_enrolling_twice_is_refused(
    ana: syn.SyntheticPerson, bruno: syn.SyntheticPerson, ana_enrolled: pl.Enrollment
) -> None:
    store = InMemoryTemplateStore()
    store.add("ana", ana_enrolled.helper_data)
    with pytest.raises(DuplicateHuman) as caught:
        enroll(syn.iris_image(ana, 4), syn.genome_vcf(ana, 4), "vcf", existing=store)
    assert isinstance(caught.value, AlreadyExists)
    assert caught.value.subject == "ana"
    # same eye, someone else's genome: still the same human
    with pytest.raises(DuplicateHuman) as caught:
        enroll(syn.iris_image(ana, 2), syn.genome_vcf(bruno, 2), "vcf", existing=store)
    assert caught.value.modality == "iris"
    # a genome already enrolled, with another eye
    with pytest.raises(DuplicateHuman) as caught:
        enroll(syn.iris_image(bruno, 2), syn.genome_fasta(ana, 2), "fasta", existing=store)
    assert caught.value.modality == "genome"
    # identical twins share a genome: the service may check the iris only (manual review)
    twin = enroll(
        syn.iris_image(bruno, 3),
        syn.genome_fasta(ana, 3),
        "fasta",
        existing=store,
        refuse_genome_match=False,
    )
    assert twin.ed25519_public_key != ana_enrolled.ed25519_public_key
    # a different human enrolls fine next to Ana
    enrolled = enroll(syn.iris_image(bruno, 0), syn.genome_vcf(bruno, 0), "vcf", existing=store)
    assert enrolled.ed25519_public_key != ana_enrolled.ed25519_public_key


def test_duplicates_are_found_through_the_index(
    ana: syn.SyntheticPerson, bruno: syn.SyntheticPerson
) -> None:
    """Indexed records are decoded only when the capture's tags select them; the same
    human is still refused (by the iris alone and by the genome alone), strangers pass."""
    cleo = syn.make_person(SEED, 3)
    store = InMemoryTemplateStore()
    for name, who in (("ana", ana), ("bruno", bruno)):
        enrolled = enroll(syn.iris_image(who, 0), syn.genome_vcf(who, 0), "vcf", existing=store)
        assert enrolled.index_key_id == store.index_key.key_id
        assert len(enrolled.index_tags) > index.IRIS_MIN_VOTES
        store.add_enrollment(name, enrolled)

    def candidates(iris_of: syn.SyntheticPerson, genome_of: syn.SyntheticPerson) -> set[str]:
        code = iris.iris_code(syn.iris_image(iris_of, 2))
        bits, known = genome.genotype_bits(genome.parse_vcf(syn.genome_vcf(genome_of, 2)))
        shifts = features.shift_order()
        probe = index.probe(store.index_key, code, bits, known, shifts)
        return {subject for subject, _ in store.candidates(probe)}

    assert candidates(ana, cleo) == {"ana"}  # the eye selects Ana's record
    assert candidates(cleo, ana) == {"ana"}  # so does her genome
    assert candidates(cleo, cleo) == set()  # a stranger costs no decoding
    with pytest.raises(DuplicateHuman) as caught:
        enroll(syn.iris_image(ana, 3), syn.genome_vcf(cleo, 3), "vcf", existing=store)
    assert (caught.value.subject, caught.value.modality) == ("ana", "iris")
    with pytest.raises(DuplicateHuman) as caught:
        enroll(syn.iris_image(cleo, 3), syn.genome_fasta(bruno, 3), "fasta", existing=store)
    assert (caught.value.subject, caught.value.modality) == ("bruno", "genome")
    enroll(syn.iris_image(cleo, 0), syn.genome_vcf(cleo, 0), "vcf", existing=store)
    # tags made under another key are not trusted: such a record is always decoded
    other = InMemoryTemplateStore()
    stale = enroll(syn.iris_image(cleo, 0), syn.genome_vcf(cleo, 0), "vcf", existing=other)
    store.add_enrollment("cleo", stale)
    assert candidates(bruno, bruno) == {"bruno", "cleo"}


def test_corrupt_stored_helper_data_is_a_server_fault(ana: syn.SyntheticPerson) -> None:
    store = InMemoryTemplateStore()
    store.add("broken", b"KHP1 not really")
    with pytest.raises(RuntimeError, match="broken"):
        enroll(syn.iris_image(ana, 0), syn.genome_vcf(ana, 0), "vcf", existing=store)


def test_image_without_an_iris_is_refused(ana: syn.SyntheticPerson) -> None:
    genome = syn.genome_vcf(ana, 0)
    flat = cv2.imencode(".png", np.full((240, 320), 128, np.uint8))[1].tobytes()
    for image in (syn.no_iris_image(1), syn.no_iris_image(2), flat):
        with pytest.raises(ValidationError) as caught:
            enroll(image, genome, "vcf", existing=InMemoryTemplateStore())
        assert caught.value.field == "iris_image"
        assert "no pupil" in caught.value.reason or "no iris" in caught.value.reason


def test_image_that_is_not_an_image_is_refused(ana: syn.SyntheticPerson) -> None:
    genome = syn.genome_vcf(ana, 0)
    png = syn.iris_image(ana, 0)
    for data, words in (
        (b"", "empty"),
        (b"GIF89a not really", "not a decodable image"),
        (png[: len(png) // 3], "not a decodable image"),
        (cv2.imencode(".png", np.zeros((40, 40), np.uint8))[1].tobytes(), "at least"),
    ):
        with pytest.raises(ValidationError) as caught:
            enroll(data, genome, "vcf", existing=InMemoryTemplateStore())
        assert caught.value.field == "iris_image"
        assert words in caught.value.reason


def test_oversized_uploads_are_refused(ana: syn.SyntheticPerson) -> None:
    image, genome = syn.iris_image(ana, 0), syn.genome_vcf(ana, 0)
    big_image = image + b"\0" * (pl.iris.MAX_IMAGE_BYTES - len(image) + 1)
    with pytest.raises(ValidationError) as caught:
        enroll(big_image, genome, "vcf", existing=InMemoryTemplateStore())
    assert caught.value.field == "iris_image" and "limit" in caught.value.reason
    big_genome = genome + b"#" * (pl.genome.MAX_GENOME_BYTES - len(genome) + 1)
    with pytest.raises(ValidationError) as caught:
        enroll(image, big_genome, "vcf", existing=InMemoryTemplateStore())
    assert caught.value.field == "genome" and "limit" in caught.value.reason
    # a small PNG that declares huge dimensions (decompression bomb) is refused unread
    bomb = bytearray(image)
    bomb[16:24] = (50_000).to_bytes(4, "big") * 2
    with pytest.raises(ValidationError) as caught:
        enroll(bytes(bomb), genome, "vcf", existing=InMemoryTemplateStore())
    assert "at most" in caught.value.reason


def test_corrupt_and_truncated_genomes_are_refused(ana: syn.SyntheticPerson) -> None:
    image = syn.iris_image(ana, 0)
    vcf, fasta = syn.genome_vcf(ana, 0), syn.genome_fasta(ana, 0)
    cases: list[tuple[bytes, str, str]] = [
        (vcf[: len(vcf) - 17], "vcf", "truncated"),
        (vcf[: len(vcf) // 2], "vcf", ""),
        (fasta[: len(fasta) - 9], "fasta", "truncated"),
        (fasta[: len(fasta) // 2 + 3], "fasta", ""),
        (b"\x1f\x8b\x08\x00gzipped", "vcf", "compressed"),
        (bytes(range(256)) * 4, "vcf", "not ASCII"),
        (bytes(range(256)) * 4, "fasta", "not ASCII"),
        (b"hello world\n", "fasta", "not a FASTA"),
        (vcf.replace(b"\t0/1", b"\t0/7", 1), "vcf", "GT allele"),
        (fasta, "vcf", "not a VCF"),
    ]
    for data, fmt, words in cases:
        with pytest.raises(ValidationError) as caught:
            enroll(image, data, fmt, existing=InMemoryTemplateStore())  # type: ignore[arg-type]
        assert caught.value.field == "genome", caught.value
        assert words in caught.value.reason, caught.value.reason
    with pytest.raises(ValidationError) as caught:
        enroll(image, vcf, "bam", existing=InMemoryTemplateStore())  # type: ignore[arg-type]
    assert caught.value.field == "genome_format"


def test_malformed_helper_data_is_refused(
    ana: syn.SyntheticPerson, ana_enrolled: pl.Enrollment
) -> None:
    helper = ana_enrolled.helper_data
    for data in (b"", b"XXXX" + helper[4:], helper[:-1], helper + b"\0"):
        with pytest.raises(ValidationError) as caught:
            reproduce(syn.iris_image(ana, 1), syn.genome_vcf(ana, 1), "vcf", data)
        assert caught.value.field == "helper_data"


def test_buffers_are_wiped_after_enrollment(
    ana: syn.SyntheticPerson, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = pl._capture

    def spy(*args: Any) -> Any:
        capture = real(*args)
        seen.append(capture)
        return capture

    monkeypatch.setattr(pl, "_capture", spy)
    enroll(syn.iris_image(ana, 0), syn.genome_vcf(ana, 0), "vcf", existing=InMemoryTemplateStore())
    (capture,) = seen
    assert not capture.code.bits.any() and not capture.code.strength.any()
    assert not capture.code.mask.any()
    assert not capture.genome_bits.any() and not capture.genome_known.any()


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except OSError:
                continue
            out[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return out


def test_nothing_biometric_reaches_disk_or_logs(
    ana: syn.SyntheticPerson,
    bruno: syn.SyntheticPerson,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    image, vcf = syn.iris_image(ana, 0), syn.genome_vcf(ana, 0)
    image2, fasta2 = syn.iris_image(ana, 1), syn.genome_fasta(ana, 1)
    writes: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def watched_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+"):
            writes.append(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    def watched_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            writes.append(f"os.open({path!r})")
        return real_os_open(path, flags, *args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        writes.append(f"cv2.imwrite{args[:1]!r}")
        return False

    monkeypatch.setattr(builtins, "open", watched_open)
    monkeypatch.setattr(io, "open", watched_open)
    monkeypatch.setattr(os, "open", watched_os_open)
    monkeypatch.setattr(cv2, "imwrite", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # any temp file would land here
    before = _listing(tmp_path)

    caplog.set_level(logging.DEBUG)
    store = InMemoryTemplateStore()
    enrolled = enroll(image, vcf, "vcf", existing=store)
    store.add("ana", enrolled.helper_data)
    reproduce(image2, fasta2, "fasta", enrolled.helper_data)
    with pytest.raises(DuplicateHuman):
        enroll(image2, fasta2, "fasta", existing=store)
    with pytest.raises(CaptureMismatch):
        reproduce(syn.iris_image(bruno, 0), syn.genome_vcf(bruno, 0), "vcf", enrolled.helper_data)

    assert writes == []
    assert _listing(tmp_path) == before == {}
    # nothing of the upload reaches the log records either
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for line in vcf.decode().splitlines()[4:10] + fasta2.decode().splitlines()[1:5]:
        assert line not in logged
    # and the public helper data does not embed the genome or the image
    assert vcf[200:260] not in enrolled.helper_data
    assert image[100:140] not in enrolled.helper_data
