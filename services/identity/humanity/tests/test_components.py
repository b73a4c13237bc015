"""The iris pipeline, the genome parsers and the fuzzy extractor, one at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.identity.humanity import bch, features, fuzzy, genome, index, iris
from services.identity.humanity import synthetic as syn
from services.identity.humanity.panel import PANEL, PANEL_ID
from services.kit.errors import ValidationError

SEED = 777


@pytest.fixture(scope="module")
def people() -> list[syn.SyntheticPerson]:
    return [syn.make_person(SEED, p) for p in range(4)]


def test_synthetic_data_is_deterministic(people: list[syn.SyntheticPerson]) -> None:
    again = syn.make_person(SEED, 0)
    assert np.array_equal(again.texture, people[0].texture)
    assert syn.iris_image(again, 3) == syn.iris_image(people[0], 3)
    assert syn.genome_vcf(again, 2) == syn.genome_vcf(people[0], 2)
    assert syn.iris_image(people[0], 1) != syn.iris_image(people[0], 2)


def test_segmentation_finds_pupil_and_limbus(people: list[syn.SyntheticPerson]) -> None:
    for person in people:
        for capture in range(3):
            truth = syn.capture_geometry(person, capture, size=(180, 240))
            seg = iris.segment(iris.decode_image(syn.iris_image(person, capture, size=(180, 240))))
            assert math.hypot(seg.pupil.x - truth.cx, seg.pupil.y - truth.cy) < 3
            assert abs(seg.pupil.r - truth.pupil_radius) < 3
            assert abs(seg.iris.r - truth.iris_radius) < 4


def test_iris_codes_match_same_eye_not_others(people: list[syn.SyntheticPerson]) -> None:
    codes = [[iris.iris_code(syn.iris_image(p, c)) for c in range(2)] for p in people]
    for i, (a, b) in enumerate(codes):
        genuine, _shift = iris.hamming_distance(a, b)
        assert genuine < 0.25
        for j, (other, _) in enumerate(codes):
            if j != i:
                assert iris.hamming_distance(a, other)[0] > 0.3
    assert codes[0][0].bits.shape == (iris.N_FILTERS, iris.CODE_ROWS, iris.CODE_COLS, 2)
    assert 0.5 < codes[0][0].mask.mean() <= 1.0


def test_rotation_is_compensated(people: list[syn.SyntheticPerson]) -> None:
    code = iris.iris_code(syn.iris_image(people[0], 0))
    distance, shift = iris.hamming_distance(code, code.shifted(5))
    assert distance == 0.0 and shift == -5


def test_eyelids_are_masked(people: list[syn.SyntheticPerson]) -> None:
    heavy = syn.CaptureNoise(eyelid_coverage=(0.2, 0.25))
    code = iris.iris_code(syn.iris_image(people[1], 0, noise=heavy))
    top = code.mask[:, :, iris.CODE_COLS * 5 // 8 : iris.CODE_COLS * 7 // 8, :]  # 225..315 deg
    assert top[:, -4:].mean() < 0.3  # the outer ring under the upper lid is masked
    assert code.mask[:, :4, : iris.CODE_COLS // 8].mean() > 0.9  # the lateral inner ring is not


def test_vcf_and_fasta_give_the_same_genotypes(people: list[syn.SyntheticPerson]) -> None:
    clean = syn.CaptureNoise(genotype_error_rate=0.0, missing_rate=0.0)
    person = people[2]
    from_vcf = genome.parse_vcf(syn.genome_vcf(person, 0, noise=clean))
    from_fasta = genome.parse_fasta(syn.genome_fasta(person, 0, noise=clean))
    assert from_vcf.tolist() == list(person.genotypes) == from_fasta.tolist()


def _vcf(rows: list[str], samples: str = "SAMPLE") -> bytes:
    head = [
        "##fileformat=VCFv4.2",
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}",
    ]
    return ("\n".join(head + rows) + "\n").encode()


def _panel_rows(gt: str = "0/1", chrom_prefix: bool = True) -> list[str]:
    rows = []
    for locus in PANEL:
        chrom = locus.chrom if chrom_prefix else locus.chrom.removeprefix("chr")
        rows.append(
            f"{chrom}\t{locus.pos}\t.\t{locus.ref}\t{locus.alt}\t.\tPASS\t.\tGT:DP\t{gt}:30"
        )
    return rows


def test_vcf_parser_reads_genotypes_strictly() -> None:
    assert set(genome.parse_vcf(_vcf(_panel_rows("1|1", chrom_prefix=False))).tolist()) == {2}
    rows = _panel_rows()
    rows.insert(3, "chr1\t123\t.\tA\tG\t.\tPASS\t.\tGT\t0/1")  # not a panel locus: ignored
    assert set(genome.parse_vcf(_vcf(rows)).tolist()) == {1}
    locus = PANEL[0]
    bad_ref = "T" if locus.ref != "T" else "A"
    failures = {
        "REF": _vcf([rows[0].replace(f"\t{locus.ref}\t{locus.alt}", f"\t{bad_ref}\t{locus.alt}")]),
        "appears twice": _vcf([rows[0], rows[0]]),
        "exactly one sample": _vcf(rows, samples="A\tB"),
        "before the #CHROM": b"##fileformat=VCFv4.2\n" + rows[0].encode() + b"\n",
        "POS": _vcf([rows[0].replace(str(locus.pos), "12x", 1)]),
        "diploid": _vcf([rows[0].replace("0/1:30", "1:30")]),
        "10 tab-separated": _vcf([rows[0] + "\textra", *rows[1:]]),
        "genotype call": _vcf(rows[: len(rows) // 2]),
    }
    for words, data in failures.items():
        with pytest.raises(ValidationError) as caught:
            genome.parse_vcf(data)
        assert caught.value.field == "genome"
        assert words in caught.value.reason, (words, caught.value.reason)


def test_vcf_no_calls_and_unknown_alleles_are_missing() -> None:
    rows = _panel_rows("0/0")
    rows[0] = rows[0].replace("0/0:30", "./.:30")
    locus = PANEL[1]
    other = next(b for b in "ACGT" if b not in (locus.ref, locus.alt))
    rows[1] = rows[1].replace(f"\t{locus.alt}\t", f"\t{other}\t").replace("0/0", "1/1")
    calls = genome.parse_vcf(_vcf(rows))
    assert calls[0] == genome.MISSING and calls[1] == genome.MISSING
    assert (calls[2:] == 0).all()


def test_fasta_reads_iupac_heterozygous_codes() -> None:
    records = []
    for locus in PANEL:
        code = syn.IUPAC_PAIRS[frozenset(locus.ref + locus.alt)]
        records.append(f">{locus.chrom}:{locus.pos - 1}-{locus.pos + 1}\nA{code}C")
    calls = genome.parse_fasta(("\n".join(records) + "\n").encode())
    assert set(calls.tolist()) == {1}
    with pytest.raises(ValidationError, match="chrom:start-end"):
        genome.parse_fasta(b">sample1\nACGT\n")
    with pytest.raises(ValidationError, match="non-nucleotide"):
        genome.parse_fasta(b">chr1:1-4\nAC1T\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), fmt=st.sampled_from(["vcf", "fasta"]))
def test_genome_parsers_only_raise_validation_errors_on_junk(data: bytes, fmt: str) -> None:
    try:
        genome.genotypes(data, fmt)
    except ValidationError as error:
        assert error.field == "genome"


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=1, max_value=20_000), fmt=st.sampled_from(["vcf", "fasta"]))
def test_any_truncation_is_an_error_or_still_parses(cut: int, fmt: str) -> None:
    person = syn.make_person(SEED, 9)
    data = syn.genome(person, 0, fmt)  # type: ignore[arg-type]
    try:
        calls = genome.genotypes(data[: max(1, len(data) - cut)], fmt)
    except ValidationError as error:
        assert error.field == "genome"
    else:  # a cut exactly between records leaves a shorter but well-formed file
        assert (calls != genome.MISSING).mean() >= genome.MIN_CALLED_FRACTION


def test_fuzzy_extractor_corrects_errors_and_erasures_within_t() -> None:
    params = features.GENOME_ECC
    t = fuzzy.correctable(params)
    rng = np.random.default_rng(5)
    w = rng.integers(0, 2, params.bits).astype(np.uint8)
    messages, offset = fuzzy.gen(params, w)
    expected = messages.astype(np.uint8).tobytes()
    noisy = w.copy()
    known = np.ones(params.bits, bool)
    for block in range(params.blocks):
        idx = rng.choice(params.n, size=2 * t - 2, replace=False) + block * params.n
        noisy[idx[: t - 2]] ^= 1  # t-2 errors
        known[idx[t - 2 : t + 2]] = False  # 4 erasures: 2(t-2) + 4 = 2t
    trials = fuzzy.rep_trials(params, offset, [(noisy, known)])
    assert expected in list(trials.combinations(0))
    far = w.copy()
    far[rng.choice(params.bits, size=params.bits // 3, replace=False)] ^= 1
    trials = fuzzy.rep_trials(params, offset, [(far, np.ones(params.bits, bool))])
    assert expected not in list(trials.combinations(0))


@pytest.mark.parametrize("params", [features.IRIS_ECC, features.GENOME_ECC])
def test_compiled_decoder_gives_galois_results(params: fuzzy.BchParams) -> None:
    """Words with 0..2t+8 errors (inside and beyond the radius) and random words: the
    compiled decoder's error counts and corrected messages are galois's, bit for bit."""
    import galois

    code = galois.BCH(params.n, params.k)
    t = int(code.t)
    rng = np.random.default_rng(11)
    rows = 240
    messages = rng.integers(0, 2, (rows, params.k)).astype(np.uint8)
    words = np.asarray(code.encode(galois.GF2(messages)), np.uint8)
    for row in range(rows - 20):
        flips = rng.choice(params.n, size=row % (2 * t + 9), replace=False)
        words[row, flips] ^= 1
    words[rows - 20 :] = rng.integers(0, 2, (20, params.n))
    want_messages, want_errors = code.decode(galois.GF2(words), output="message", errors=True)
    got_messages, got_errors = fuzzy._decode(params, words)
    assert np.array_equal(got_errors, np.asarray(want_errors))
    decoded = got_errors >= 0
    assert 0 < decoded.sum() < rows
    assert np.array_equal(got_messages[decoded], np.asarray(want_messages, np.uint8)[decoded])
    assert np.array_equal(got_messages[got_errors == 0], messages[got_errors == 0])


@pytest.mark.parametrize("k", [features.IRIS_ECC.k, features.GENOME_ECC.k, 55])
def test_codes_are_galois_codes(k: int) -> None:
    """The codes built in ``bch`` are galois's BCH(255, k): same t, generator polynomial
    and systematic codewords (helper data made before and after stay compatible)."""
    import galois

    reference = galois.BCH(255, k)
    code = bch.bch_code(255, k)
    assert code.t == reference.t
    assert np.array_equal(code.generator, np.asarray(reference.generator_poly.coeffs, np.uint8))
    messages = np.random.default_rng(k).integers(0, 2, (8, k)).astype(np.uint8)
    want = np.asarray(reference.encode(galois.GF2(messages)), np.uint8)
    assert np.array_equal(code.encode(messages), want)
    assert int(galois.GF(2**8).irreducible_poly) == bch.PRIMITIVE_POLYNOMIALS[8]


def test_bch_dimensions_without_a_code_are_refused() -> None:
    with pytest.raises(ValueError, match="dimension 36"):
        bch.bch_code(255, 36)
    with pytest.raises(ValueError, match="length 100"):
        bch.bch_code(100, 36)


def test_iris_tag_table_gives_the_keyed_tags(people: list[syn.SyntheticPerson]) -> None:
    """The tabulated iris tags are IndexKey.tag's, and a probe reads the same tags from
    the per-tag HMACs (before the table) and from the table."""
    key = index.IndexKey(bytes(range(32)))
    tagger = index.IrisTagger(key)
    rng = np.random.default_rng(3)
    bands = rng.integers(0, index.IRIS_BANDS, 50)
    values = rng.integers(0, 1 << index.IRIS_BAND_BITS, 50)
    pairs = zip(bands.tolist(), values.tolist(), strict=True)
    expected = [key.tag(b"iris\x00", b, v.to_bytes(2, "big")) for b, v in pairs]
    assert tagger.lookup(bands, values) == expected
    code = iris.iris_code(syn.iris_image(people[0], 0))
    bits, known = genome.genotype_bits(genome.parse_vcf(syn.genome_vcf(people[0], 0)))
    shifts = features.shift_order()
    index.iris_tagger.cache_clear()
    before = index.probe(key, code, bits, known, shifts)
    index.iris_tagger(key).build()
    assert tagger.lookup(bands, values) == index.iris_tagger(key).lookup(bands, values)
    after = index.probe(key, code, bits, known, shifts)
    assert before == after and len(after.iris) > index.IRIS_PROBE_BANDS
    index.iris_tagger.cache_clear()


def test_panel_is_fixed_data() -> None:
    assert len(PANEL) == 510 and len(PANEL_ID) == 8
    assert len({(x.chrom, x.pos) for x in PANEL}) == len(PANEL)
    assert all(x.ref != x.alt and x.ref in "ACGT" and x.alt in "ACGT" for x in PANEL)
    assert 2 * len(PANEL) == features.GENOME_ECC.bits
