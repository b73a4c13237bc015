"""Readable text rendering of a :class:`~chain.verify.verifier.VerificationReport` (CLI)."""

from __future__ import annotations

from chain.translator.batching import parse_batch_id
from chain.verify.verifier import EntryReport, EntryStatus, VerificationReport
from services.kit.errors import ValidationError

_MARK = {
    EntryStatus.VERIFIED: "OK  ",
    EntryStatus.UNANCHORED: "WAIT",
    EntryStatus.FAILED: "FAIL",
}


def _short(value: int | None, keep: int = 10) -> str:
    if value is None:
        return "-"
    text = hex(value)
    return text if len(text) <= keep + 6 else f"{text[: keep + 2]}…{text[-4:]}"


def _batch(batch_id: int) -> str:
    """``learning/12`` for Keiko's structured batch ids, hex otherwise."""
    try:
        domain, sequence = parse_batch_id(batch_id)
    except ValidationError:
        return _short(batch_id)
    return f"{domain.value}/{sequence}"


def render_entry(entry: EntryReport) -> list[str]:
    head = f"  [{_MARK[entry.status]}] {entry.position + 1:>4}. {entry.label}"
    if entry.batch_id is not None:
        head += (
            f"  batch {_batch(entry.batch_id)}  leaf {entry.leaf_index}"
            f"  block {entry.block}  tx {_short(entry.tx_hash)}"
        )
    elif entry.status is EntryStatus.UNANCHORED:
        head += "  (signed, not yet anchored)"
    lines = [head]
    if entry.author is not None:
        lines.append(f"           author: {entry.author.label}; {entry.author.key_text}")
    else:
        lines.append("           author: not stated (a version 1 export)")
    return lines + [f"           - {problem}" for problem in entry.problems]


def render_text(report: VerificationReport) -> str:
    """A plain-text report: header, one line per entry (+ its problems), verdict."""
    total = len(report.entries)
    lines = [
        "Keiko passport verification",
        f"  passport : {report.passport_id}",
    ]
    if report.learner_id:
        lines.append(f"  learner  : {report.learner_id}")
    lines += [
        f"  exported : {report.generated_at.isoformat()}",
        f"  entries  : {total} ({len(report.verified)} verified, "
        f"{len(report.unanchored)} not yet anchored, {len(report.failed)} failed)",
        "  roots are read from the chain, never from the export",
        "",
    ]
    for entry in report.entries:
        lines += render_entry(entry)
    lines.append("")
    if report.ok:
        verdict = f"RESULT: VERIFIED: all {len(report.verified)} anchored entries check out"
        if report.unanchored:
            verdict += f"; {len(report.unanchored)} not yet anchored"
        lines.append(verdict)
    else:
        names = ", ".join(f"{e.label} ({e.reason})" for e in report.failed)
        lines.append(f"RESULT: FAILED: {len(report.failed)} of {total} entries failed: {names}")
    return "\n".join(lines) + "\n"
