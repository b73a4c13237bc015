"""Genome sample -> genotypes at the fixed SNP panel (:mod:`.panel`).

Two upload formats, both parsed from bytes in memory:

* **VCF** (4.0-4.4, plain text, one sample): a small strict parser of our own
  (Biopython has no VCF reader). The genotype at a panel locus is the number of copies
  of the panel's alternate allele in the sample's ``GT``; a locus absent from the file,
  a no-call (``./.``), a filtered record or an allele that is neither the panel's ref
  nor alt is *missing*. A record at a panel position whose REF differs from the panel
  is refused (a different reference build). Chromosomes may be named ``chr1`` or ``1``.
* **FASTA** (read with ``Bio.SeqIO``): consensus sequences of regions, one record per
  region, named ``chrom:start-end`` (1-based, inclusive, as ``samtools faidx`` names
  them). The base at a panel position is read as ref (0 copies), alt (2 copies), the
  IUPAC ambiguity code of {ref, alt} (heterozygous, 1 copy) or anything else (``N``,
  another base: missing). A sequence shorter or longer than its region is refused as
  truncated or corrupt.

Uploads above :data:`MAX_GENOME_BYTES`, compressed or binary data, malformed records
and samples calling too few panel loci raise ``ValidationError("genome", reason)``.
"""

from __future__ import annotations

import io
import re
from typing import Literal

import numpy as np
from Bio import SeqIO

from services.identity.humanity.panel import PANEL, PANEL_INDEX
from services.kit.errors import ValidationError

FIELD = "genome"
GenomeFormat = Literal["vcf", "fasta"]
GENOME_FORMATS: tuple[str, ...] = ("vcf", "fasta")

MAX_GENOME_BYTES = 8 * 1024 * 1024
"""Largest accepted genome upload. A panel-only VCF or FASTA is ~30-40 KB; this leaves
room for a targeted-panel VCF with other records, not for a whole-genome file."""
MIN_CALLED_FRACTION = 0.8
"""At least this share of panel loci must have a genotype call."""
MISSING = -1

_IUPAC_HET: dict[frozenset[str], str] = {
    frozenset("AG"): "R",
    frozenset("CT"): "Y",
    frozenset("GC"): "S",
    frozenset("AT"): "W",
    frozenset("GT"): "K",
    frozenset("AC"): "M",
}
_NUCLEOTIDES = re.compile(r"^[ACGTRYSWKMBDHVN.\-]*$")
_REGION = re.compile(r"^(?P<chrom>[A-Za-z0-9_.]+):(?P<start>\d+)-(?P<end>\d+)$")
_BASES = re.compile(r"^[ACGTN]+$")
_ALT = re.compile(r"^([ACGTN*]+|\.|<[^>]+>)$")


def _fail(reason: str) -> ValidationError:
    return ValidationError(FIELD, reason)


def _text(data: bytes | bytearray | memoryview, kind: str) -> str:
    if len(data) == 0:
        raise _fail("empty upload")
    if len(data) > MAX_GENOME_BYTES:
        raise _fail(f"{kind} file is {len(data)} bytes; the limit is {MAX_GENOME_BYTES} bytes")
    head = bytes(data[:4])
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head == b"\x28\xb5\x2f\xfd":
        raise _fail(f"compressed {kind} files are not accepted; upload plain text")
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise _fail(f"corrupt {kind} file: not ASCII text") from None
    if "\x00" in text:
        raise _fail(f"corrupt {kind} file: contains NUL bytes")
    return text


def _norm_chrom(chrom: str) -> str:
    return chrom if chrom.startswith("chr") else f"chr{chrom}"


def _finish(calls: np.ndarray) -> np.ndarray:
    called = int((calls != MISSING).sum())
    need = int(np.ceil(MIN_CALLED_FRACTION * len(PANEL)))
    if called < need:
        calls.fill(MISSING)
        raise _fail(
            f"only {called} of the {len(PANEL)} panel SNPs have a genotype call; "
            f"at least {need} are needed"
        )
    return calls


def parse_vcf(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Genotypes (int8, ``MISSING`` for no call) at every panel locus, from a VCF."""
    text = _text(data, "VCF")
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    if not lines or not lines[0].startswith("##fileformat=VCFv4"):
        raise _fail("not a VCF file: the first line must be ##fileformat=VCFv4.x")
    calls = np.full(len(PANEL), MISSING, np.int8)
    seen = np.zeros(len(PANEL), bool)
    header_seen = False
    try:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\r")
            last = number == len(lines)
            if line.startswith("##"):
                if header_seen:
                    raise _fail(f"line {number}: meta line after the #CHROM header")
                continue
            if line.startswith("#"):
                columns = line[1:].split("\t")
                if columns[:8] != ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
                    raise _fail(f"line {number}: malformed #CHROM header")
                if len(columns) != 10 or columns[8] != "FORMAT":
                    raise _fail(
                        f"line {number}: the VCF must have exactly one sample column "
                        f"(found {max(len(columns) - 9, 0)})"
                    )
                header_seen = True
                continue
            if not header_seen:
                raise _fail(f"line {number}: data record before the #CHROM header")
            if not line:
                raise _fail(f"line {number}: empty line")
            fields = line.split("\t")
            if len(fields) != 10:
                if last and not ends_with_newline:
                    raise _fail(f"truncated VCF: the last record (line {number}) is incomplete")
                raise _fail(f"line {number}: expected 10 tab-separated columns, got {len(fields)}")
            _vcf_record(number, fields, calls, seen)
    except ValidationError:
        calls.fill(MISSING)
        raise
    if not header_seen:
        raise _fail("not a VCF file: no #CHROM header line")
    return _finish(calls)


def _vcf_record(number: int, fields: list[str], calls: np.ndarray, seen: np.ndarray) -> None:
    chrom, pos_text, _id, ref, alt, _qual, filt, _info, fmt, sample = fields
    if not (pos_text.isascii() and pos_text.isdigit()) or int(pos_text) < 1:
        raise _fail(f"line {number}: POS must be a positive integer")
    if not _BASES.match(ref):
        raise _fail(f"line {number}: REF must be bases A, C, G, T or N")
    alts = alt.split(",")
    if not all(_ALT.match(a) for a in alts):
        raise _fail(f"line {number}: malformed ALT")
    keys = fmt.split(":")
    values = sample.split(":")
    if len(values) > len(keys):
        raise _fail(f"line {number}: sample has more values than FORMAT keys")
    index = PANEL_INDEX.get((_norm_chrom(chrom), int(pos_text)))
    if index is None:
        return
    locus = PANEL[index]
    if seen[index]:
        raise _fail(f"line {number}: panel SNP {locus.rsid} appears twice")
    seen[index] = True
    if ref != locus.ref:
        raise _fail(
            f"line {number}: REF {ref} at {locus.chrom}:{locus.pos} differs from the panel's "
            f"{locus.ref} (is the file aligned to GRCh38?)"
        )
    if keys[0] != "GT":
        raise _fail(f"line {number}: FORMAT must start with GT")
    gt = values[0]
    alleles = re.split(r"[/|]", gt)
    if len(alleles) != 2:
        raise _fail(f"line {number}: GT {gt!r} is not a diploid genotype")
    if filt not in ("PASS", "."):
        return
    copies = 0
    for allele in alleles:
        if allele == ".":
            return
        if not (allele.isascii() and allele.isdigit()) or int(allele) > len(alts):
            raise _fail(f"line {number}: GT allele {allele!r} is not 0..{len(alts)}")
        k = int(allele)
        if k == 0:
            continue
        if alts[k - 1] != locus.alt:
            return  # an allele the panel does not know: no call
        copies += 1
    calls[index] = copies


def parse_fasta(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Genotypes (int8, ``MISSING`` for no call) at every panel locus, from a FASTA."""
    text = _text(data, "FASTA")
    if not text.lstrip().startswith(">"):
        raise _fail("not a FASTA file: it must start with a '>' header line")
    if not text.endswith("\n"):
        raise _fail("truncated FASTA: the file does not end with a newline")
    calls = np.full(len(PANEL), MISSING, np.int8)
    seen = np.zeros(len(PANEL), bool)
    by_chrom: dict[str, list[int]] = {}
    for i, locus in enumerate(PANEL):
        by_chrom.setdefault(locus.chrom, []).append(i)
    records = 0
    try:
        for record in SeqIO.parse(io.StringIO(text), "fasta"):
            records += 1
            match = _REGION.match(record.id)
            if match is None:
                raise _fail(f"record {record.id!r}: the header must name a region chrom:start-end")
            start, end = int(match["start"]), int(match["end"])
            seq = str(record.seq).upper()
            if end < start or start < 1:
                raise _fail(f"record {record.id!r}: invalid region")
            if not _NUCLEOTIDES.match(seq):
                raise _fail(f"record {record.id!r}: sequence has non-nucleotide characters")
            if len(seq) != end - start + 1:
                raise _fail(
                    f"record {record.id!r}: {len(seq)} bases for a region of "
                    f"{end - start + 1} (truncated or corrupt)"
                )
            for i in by_chrom.get(_norm_chrom(match["chrom"]), ()):
                locus = PANEL[i]
                if not start <= locus.pos <= end:
                    continue
                if seen[i]:
                    raise _fail(f"record {record.id!r}: panel SNP {locus.rsid} covered twice")
                seen[i] = True
                base = seq[locus.pos - start]
                if base == locus.ref:
                    calls[i] = 0
                elif base == locus.alt:
                    calls[i] = 2
                elif base == _IUPAC_HET.get(frozenset(locus.ref + locus.alt)):
                    calls[i] = 1
    except ValidationError:
        calls.fill(MISSING)
        raise
    if records == 0:
        raise _fail("no FASTA records")
    return _finish(calls)


def genotypes(data: bytes | bytearray | memoryview, genome_format: str) -> np.ndarray:
    """Panel genotypes from an upload in ``genome_format`` ('vcf' or 'fasta')."""
    if genome_format == "vcf":
        return parse_vcf(data)
    if genome_format == "fasta":
        return parse_fasta(data)
    raise ValidationError("genome_format", f"must be one of {', '.join(GENOME_FORMATS)}")


def genotype_bits(calls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two bits per locus, a thermometer code (0 -> 00, 1 -> 10, 2 -> 11) so that a
    one-step genotype error flips one bit; and a known-mask (False for missing)."""
    bits = np.zeros((calls.size, 2), np.uint8)
    bits[:, 0] = calls >= 1
    bits[:, 1] = calls >= 2
    known = np.repeat((calls != MISSING)[:, None], 2, axis=1)
    return bits.ravel(), known.ravel()
