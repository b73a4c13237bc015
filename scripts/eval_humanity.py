"""Evaluate the proof-of-humanity pipeline on a synthetic population; update docs.

    .venv/bin/python scripts/eval_humanity.py                  # 200 people x 5 captures
    .venv/bin/python scripts/eval_humanity.py --people 40 --no-docs   # quick look

Per person, capture 0 is the enrollment and captures 1-4 are new captures. Measured:

1. the classic iris matcher: masked fractional Hamming distance with rotation
   compensation between every pair of captures (genuine: same person; impostor:
   capture 0 of every pair of different people);
2. the fuzzy extractor's decision statistic: for an enrollment and a capture, per code
   block ``(2 * errors + erasures) / (2 * n)`` at the enrolled bit positions, the worst
   block at the best rotation. A block decodes iff this is <= t / n, so FRR/FAR as a
   function of this threshold is the curve the BCH code's ``t`` is chosen from;
   impostors: every enrollment against capture 1 of every other person;
3. the same statistic for the genome bits (captures rendered as VCF);
4. the duplicate-check index (:mod:`services.identity.humanity.index`): how often a
   genuine re-capture's tags select its enrolled record (iris tags, genome tags), and
   how many other people's records they select;
5. end to end, with the real BCH decoding and hash checks: ``reproduce`` for every
   genuine capture (VCF and FASTA alternating) and the iris half of the fuzzy
   extractor for impostor captures (the genome half only makes impostors fail more).

Work is spread over ``--workers`` processes; biometric data stays in memory (worker
results travel through pipes) and nothing but the PNG plot and the Markdown section
is written. ``--no-docs`` writes nothing at all.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from services.identity.humanity import features, fuzzy, genome, index, iris, pipeline  # noqa: E402
from services.identity.humanity import synthetic as syn  # noqa: E402
from services.kit.errors import DomainError  # noqa: E402

DOC = ROOT / "docs" / "humanity.md"
PLOT = ROOT / "docs" / "img" / "humanity-far-frr.png"
BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"


@dataclass
class PersonCodes:
    person: int
    codes: list[iris.IrisCode | None]
    genome_bits: list[tuple[np.ndarray, np.ndarray]]
    failures: list[str]


def _extract(args: tuple[int, int, int]) -> PersonCodes:
    seed, person, captures = args
    who = syn.make_person(seed, person)
    codes: list[iris.IrisCode | None] = []
    bits = []
    failures = []
    for c in range(captures):
        try:
            codes.append(iris.iris_code(syn.iris_image(who, c)))
        except DomainError as error:
            codes.append(None)
            failures.append(f"person {person} capture {c}: {error}")
        calls = genome.parse_vcf(syn.genome_vcf(who, c))
        bits.append(genome.genotype_bits(calls))
    return PersonCodes(person, codes, bits, failures)


def _block_stat(
    enrolled: np.ndarray, bits: np.ndarray, known: np.ndarray, params: fuzzy.BchParams
) -> np.ndarray:
    """Worst-block (2v + e) / 2n over the last axis (leading axes broadcast)."""
    wrong = (enrolled != bits) & known
    cost = 2 * wrong.astype(np.int32) + (~known)
    per_block = cost.reshape(*cost.shape[:-1], params.blocks, params.n).sum(-1)
    return per_block.max(-1) / (2 * params.n)


def _e2e_genuine(args: tuple[int, int, int]) -> list[tuple[int, int, str]]:
    """Enroll capture 0, reproduce captures 1..n-1 -> (person, capture, outcome)."""
    seed, person, captures = args
    who = syn.make_person(seed, person)
    out = []
    try:
        enrolled = pipeline.enroll(
            syn.iris_image(who, 0),
            syn.genome_vcf(who, 0),
            "vcf",
            existing=pipeline.InMemoryTemplateStore(),
        )
    except DomainError as error:
        return [(person, 0, f"enroll failed: {error.message}")]
    for c in range(1, captures):
        fmt: pipeline.GenomeFormat = "vcf" if c % 2 else "fasta"
        try:
            got = pipeline.reproduce(
                syn.iris_image(who, c), syn.genome(who, c, fmt), fmt, enrolled.helper_data
            )
            same = got.ed25519_public_key == enrolled.ed25519_public_key
            out.append((person, c, "ok" if same else "WRONG KEY"))
        except DomainError as error:
            out.append((person, c, error.message))
    return out


def _e2e_impostor(args: tuple[int, int, list[int]]) -> list[bool]:
    """Enroll ``person``; try the iris of each of ``others`` -> accepted?"""
    seed, person, others = args
    who = syn.make_person(seed, person)
    try:
        enrolled = pipeline.enroll(
            syn.iris_image(who, 0),
            syn.genome_vcf(who, 0),
            "vcf",
            existing=pipeline.InMemoryTemplateStore(),
        )
    except DomainError:
        return []
    helper = pipeline.HelperData.from_bytes(enrolled.helper_data)
    accepted = []
    for other in others:
        try:
            code = iris.iris_code(syn.iris_image(syn.make_person(seed, other), 1))
        except DomainError:
            continue
        accepted.append(pipeline._rep_iris(helper, code) is not None)
        code.wipe()
    return accepted


@dataclass
class IndexRecall:
    probes: int
    iris_found: int
    genome_found: int
    either_found: int
    impostor_probes: int
    iris_others: int
    genome_others: int
    enrolled: int


def index_recall(people: list[PersonCodes], shifts: list[int]) -> IndexRecall:
    """Enroll capture 0 of everyone into an index; probe with captures 1.. (genuine)."""
    key = index.IndexKey(bytes(range(32)))
    postings: dict[int, list[int]] = {}
    enrolled = set()
    for pc in people:
        code = pc.codes[0]
        if code is None:
            continue
        enrolled.add(pc.person)
        for tag in index.enrollment_tags(key, code, *pc.genome_bits[0]):
            postings.setdefault(tag, []).append(pc.person)
    found = {"iris": 0, "genome": 0, "either": 0}
    others = {"iris": 0, "genome": 0}
    probes = impostor_probes = 0
    for pc in people:
        if pc.person not in enrolled:
            continue
        for c in range(1, len(pc.codes)):
            code = pc.codes[c]
            if code is None:
                continue
            probe = index.probe(key, code, *pc.genome_bits[c], shifts)
            hits = [(str(q), tag) for tag in probe.tags() for q in postings.get(tag, ())]
            by_iris = index.Probe(probe.iris, set()).candidates(hits)
            by_genome = index.Probe({}, probe.genome).candidates(hits)
            me = str(pc.person)
            probes += 1
            found["iris"] += me in by_iris
            found["genome"] += me in by_genome
            found["either"] += me in (by_iris | by_genome)
            if c == 1:
                impostor_probes += 1
                others["iris"] += len(by_iris - {me})
                others["genome"] += len(by_genome - {me})
    return IndexRecall(
        probes,
        found["iris"],
        found["genome"],
        found["either"],
        impostor_probes,
        others["iris"],
        others["genome"],
        len(enrolled),
    )


def rates(genuine: np.ndarray, impostor: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    frr = np.array([(genuine > t).mean() for t in grid])
    far = np.array([(impostor <= t).mean() for t in grid])
    return frr, far


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--captures", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--impostor-trials", type=int, default=5, help="per person, end to end")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    started = time.time()
    P, C = args.people, args.captures
    # fork is safe here: this process has not loaded numba yet (workers warm up themselves)
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=pipeline.warm_up) as pool:
        people = pool.map(_extract, [(args.seed, p, C) for p in range(P)])
        t_extract = time.time() - started
        print(f"features: {P}x{C} captures in {t_extract:.0f}s", flush=True)

        failures = [f for pc in people for f in pc.failures]
        n_captures = P * C

        # 1. classic matcher (Hamming distance with rotation compensation)
        hd_gen, hd_imp = [], []
        for pc in people:
            valid = [c for c in pc.codes if c is not None]
            for i in range(len(valid)):
                for j in range(i + 1, len(valid)):
                    hd_gen.append(iris.hamming_distance(valid[i], valid[j])[0])
        firsts = [(pc.person, pc.codes[0]) for pc in people if pc.codes[0] is not None]
        for i in range(len(firsts)):
            for j in range(i + 1, len(firsts)):
                hd_imp.append(iris.hamming_distance(firsts[i][1], firsts[j][1])[0])
        hd_gen_a, hd_imp_a = np.array(hd_gen), np.array(hd_imp)
        print(f"matcher: {len(hd_gen)} genuine, {len(hd_imp)} impostor pairs", flush=True)

        # 2. fuzzy-extractor statistic, iris
        params = features.IRIS_ECC
        shifts = features.shift_order()
        probes: list[tuple[int, iris.IrisCode]] = [
            (pc.person, pc.codes[1]) for pc in people if pc.codes[1] is not None
        ]
        probe_bits = np.stack(
            [np.stack([code.shifted(s).bits.ravel() for s in shifts]) for _, code in probes]
        )  # (probes, shifts, CODE_BITS)
        probe_mask = np.stack(
            [np.stack([code.shifted(s).mask.ravel() for s in shifts]) for _, code in probes]
        )
        probe_people = np.array([p for p, _ in probes])
        fe_gen, fe_imp = [], []
        rng = np.random.default_rng(args.seed)
        for pc in people:
            enrolled = pc.codes[0]
            if enrolled is None:
                continue
            pos = features.select_iris_positions(enrolled, rng=rng)
            ebits = enrolled.bits.ravel()[pos]
            for c in range(1, C):
                code = pc.codes[c]
                if code is None:
                    continue
                stats = [
                    _block_stat(ebits, *features.iris_bits(code, pos, s), params) for s in shifts
                ]
                fe_gen.append(min(stats))
            others = probe_people != pc.person
            stat = _block_stat(
                ebits, probe_bits[:, :, pos][others], probe_mask[:, :, pos][others], params
            )
            fe_imp.extend(stat.min(axis=1).tolist())
        fe_gen_a, fe_imp_a = np.array(fe_gen), np.array(fe_imp)
        print(f"fuzzy iris: {len(fe_gen)} genuine, {len(fe_imp)} impostor", flush=True)

        # 3. genome statistic
        gparams = features.GENOME_ECC
        g_gen, g_imp = [], []
        enrolled_g = [pc.genome_bits[0][0] for pc in people]
        for pc in people:
            for c in range(1, C):
                g_gen.append(float(_block_stat(enrolled_g[pc.person], *pc.genome_bits[c], gparams)))
        for i in range(len(people)):
            for j in range(len(people)):
                if j != i:
                    b, k = people[j].genome_bits[1]
                    g_imp.append(float(_block_stat(enrolled_g[i], b, k, gparams)))
        g_gen_a, g_imp_a = np.array(g_gen), np.array(g_imp)

        # 4. the duplicate-check index: are genuine re-captures candidates, how many
        # others are
        lookup = index_recall(people, shifts)
        print(f"index: {lookup.probes} genuine probes", flush=True)

        for pc in people:
            for code in pc.codes:
                if code is not None:
                    code.wipe()
            for b, k in pc.genome_bits:
                b.fill(0)
                k.fill(False)
        probe_bits.fill(0)
        probe_mask.fill(False)
        del people, probes

        # 5. end to end
        e2e = [
            r
            for chunk in pool.map(_e2e_genuine, [(args.seed, p, C) for p in range(P)])
            for r in chunk
        ]
        imp_jobs = []
        for p in range(P):
            others = rng.choice([q for q in range(P) if q != p], args.impostor_trials, False)
            imp_jobs.append((args.seed, p, [int(q) for q in others]))
        e2e_imp = [a for chunk in pool.map(_e2e_impostor, imp_jobs) for a in chunk]
    elapsed = time.time() - started
    print(f"end to end done, total {elapsed:.0f}s", flush=True)

    t_iris = fuzzy.correctable(params)
    t_genome = fuzzy.correctable(gparams)
    chosen = t_iris / params.n
    grid = np.round(np.arange(0.0, 0.5001, 0.005), 4)
    frr, far = rates(fe_gen_a, fe_imp_a, grid)
    hd_grid = np.round(np.arange(0.0, 0.5001, 0.005), 4)
    hd_frr, hd_far = rates(hd_gen_a, hd_imp_a, hd_grid)

    e2e_ok = sum(1 for r in e2e if r[2] == "ok")
    e2e_fail = [r for r in e2e if r[2] != "ok"]
    fte = sum(1 for r in e2e if r[2].startswith("enroll failed"))
    e2e_genuine_n = len(e2e)
    lines = []
    lines.append(
        f"Population: {P} synthetic people x {C} captures (seed {args.seed}), "
        f"{iris_size_note()}; run time {elapsed:.0f}s on {args.workers} workers."
    )
    lines.append("")
    lines.append(
        f"Capture failures (no iris found): {len(failures)} of {n_captures} "
        f"({100 * len(failures) / n_captures:.2f}%)."
    )
    lines.append("")
    lines.append(
        "**Fuzzy extractor, iris half** (decision statistic: worst block's "
        "(2 errors + erasures) / 2n at the best rotation; a block decodes iff <= t/n):"
    )
    lines.append("")
    lines.append("| threshold t/n | BCH(255,k) | FRR (iris) | FAR (iris) |")
    lines.append("|---|---|---|---|")
    for code_k in (91, 63, 55, 47, 45, 37, 29, 21):
        t = fuzzy.correctable(fuzzy.BchParams(255, code_k, 1))
        tau = t / 255
        mark = " **(chosen)**" if t == t_iris else ""
        lines.append(
            f"| {tau:.3f}{mark} | (255,{code_k}) t={t} | {share(fe_gen_a > tau)} | "
            f"{share(fe_imp_a <= tau)} |"
        )
    lines.append("")
    lines.append(
        f"Genuine comparisons {len(fe_gen_a)}, impostor comparisons {len(fe_imp_a)}. "
        f"Genuine statistic: median {np.median(fe_gen_a):.3f}, 99th percentile "
        f"{np.percentile(fe_gen_a, 99):.3f}, max {fe_gen_a.max():.3f}. Impostor: min "
        f"{fe_imp_a.min():.3f}, 1st percentile {np.percentile(fe_imp_a, 1):.3f}, median "
        f"{np.median(fe_imp_a):.3f}."
    )
    lines.append("")
    lines.append(
        f"**Genome half** (same statistic on the 1020 genotype bits; "
        f"{len(g_gen_a)} genuine, {len(g_imp_a)} impostor comparisons; genuine median "
        f"{np.median(g_gen_a):.3f}, max {g_gen_a.max():.3f}; impostor min "
        f"{g_imp_a.min():.3f}):"
    )
    lines.append("")
    lines.append("| threshold t/n | BCH(255,k) | FRR (genome) | FAR (genome) |")
    lines.append("|---|---|---|---|")
    for code_k in (131, 115, 91):
        t = fuzzy.correctable(fuzzy.BchParams(255, code_k, 1))
        tau = t / 255
        mark = " **(chosen)**" if t == t_genome else ""
        lines.append(
            f"| {tau:.3f}{mark} | (255,{code_k}) t={t} | {share(g_gen_a > tau)} | "
            f"{share(g_imp_a <= tau)} |"
        )
    lines.append("")
    lines.append(
        "**Classic iris matcher** (masked fractional Hamming distance, rotation "
        f"+-{iris.MAX_SHIFT_COLUMNS} columns): genuine median {np.median(hd_gen_a):.3f}, "
        f"max {hd_gen_a.max():.3f}; impostor min {hd_imp_a.min():.3f}, median "
        f"{np.median(hd_imp_a):.3f}; equal error rate {pct(eer(hd_frr, hd_far))} "
        f"({len(hd_gen_a)} genuine, {len(hd_imp_a)} impostor pairs)."
    )
    lines.append("")
    lines.append(
        f"**End to end** (real BCH decoding and hash checks): {e2e_ok} of {e2e_genuine_n} "
        f"genuine re-captures reproduced the enrolled Ed25519 key "
        f"(FRR {share(np.array([r[2] != 'ok' for r in e2e]))}, failures to enroll {fte}); "
        f"{sum(e2e_imp)} of {len(e2e_imp)} impostor iris captures reproduced another "
        f"person's iris secret (FAR {share(np.array(e2e_imp, bool))})."
    )
    pairs = lookup.impostor_probes * (lookup.enrolled - 1)
    lines.append("")
    lines.append(
        "**Duplicate-check index** (capture 0 of everyone enrolled with its tags, captures "
        f"1-{C - 1} looked up; {lookup.probes} genuine lookups): the enrolled record was a "
        f"candidate by the iris tags for {lookup.iris_found} "
        f"({pct(lookup.iris_found / lookup.probes)}), by the genome tags for "
        f"{lookup.genome_found} ({pct(lookup.genome_found / lookup.probes)}), by either for "
        f"{lookup.either_found} ({pct(lookup.either_found / lookup.probes)}). Other people "
        f"selected (false candidates, each costs one decode): iris {lookup.iris_others} of "
        f"{pairs} pairs ({pct(lookup.iris_others / pairs)}), genome {lookup.genome_others} "
        f"({pct(lookup.genome_others / pairs)})."
    )
    if e2e_fail:
        lines.append("")
        lines.append(
            "Genuine failures: "
            + "; ".join(f"person {p} capture {c}: {why}" for p, c, why in e2e_fail[:12])
            + (" ..." if len(e2e_fail) > 12 else "")
        )
    report = "\n".join(lines)
    print(report)
    if args.no_docs:
        return
    plot(grid, frr, far, hd_grid, hd_frr, hd_far, fe_gen_a, fe_imp_a, chosen)
    write_doc(report)


def iris_size_note() -> str:
    return "iris images 320x240 PNG, VCF and FASTA genomes of the 510-SNP panel"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def share(hits: np.ndarray) -> str:
    """``hits`` (booleans) as 'percent (count/total)', so 1 in 39800 does not read 0.00%."""
    count, total = int(hits.sum()), int(hits.size)
    return f"{100 * count / max(total, 1):.3g}% ({count}/{total})"


def eer(frr: np.ndarray, far: np.ndarray) -> float:
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


def plot(
    grid: np.ndarray,
    frr: np.ndarray,
    far: np.ndarray,
    hd_grid: np.ndarray,
    hd_frr: np.ndarray,
    hd_far: np.ndarray,
    gen: np.ndarray,
    imp: np.ndarray,
    chosen: float,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    bins = np.linspace(0, 0.5, 101)
    ax.hist(gen, bins=bins, alpha=0.6, label="genuine", density=True)
    ax.hist(imp, bins=bins, alpha=0.6, label="impostor", density=True)
    ax.axvline(chosen, color="k", ls="--", label=f"t/n = {chosen:.3f}")
    ax.set_xlabel("worst-block (2 errors + erasures) / 2n")
    ax.set_title("Fuzzy extractor statistic (iris)")
    ax.legend()
    ax = axes[1]
    ax.plot(grid, np.maximum(frr, 1e-5), label="FRR")
    ax.plot(grid, np.maximum(far, 1e-5), label="FAR")
    ax.axvline(chosen, color="k", ls="--", label="chosen")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.1)
    ax.set_xlabel("threshold t/n")
    ax.set_title("FRR / FAR vs BCH threshold (iris)")
    ax.legend()
    ax = axes[2]
    ax.plot(hd_grid, np.maximum(hd_frr, 1e-5), label="FRR")
    ax.plot(hd_grid, np.maximum(hd_far, 1e-5), label="FAR")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.1)
    ax.set_xlabel("fractional Hamming distance threshold")
    ax.set_title("Classic iris matcher")
    ax.legend()
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    print(f"wrote {PLOT.relative_to(ROOT)}")


def write_doc(report: str) -> None:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{report}\n{END}{tail}")
    print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
