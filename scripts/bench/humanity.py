"""Benchmark: proof-of-humanity enrollment and verification latency and throughput.

Synthetic captures (320x240 PNG eye images, panel VCF/FASTA genomes) are generated
before timing; each timed call is the public API from bytes to keys:

* warm-up: building the BCH codes and JIT-compiling the decoder (once a process);
* ``enroll`` with an empty template store (the enrollment itself);
* ``enroll`` with ``--enrolled`` humans already in the store without index tags (the
  duplicate check runs the fuzzy extractor against each of them: linear);
* ``reproduce`` (verification / key recovery) of a new capture.

Latencies are p50/p95 over ``--ops`` calls in one process; throughput is calls per
second of that sequential loop, and of ``--workers`` processes running it side by side.

    .venv/bin/python scripts/bench/humanity.py [--ops 40] [--enrolled 100] [--workers 2] \
        [--write FILE]

``--population 1000,10000`` measures the duplicate check at those population sizes
instead (``humanity_scale.py``): real enrollment records of synthetic humans, built once
by ``--workers`` processes and cached under the system's temporary directory
(``humanity_population.py``), then, in one process and one run, enrollment of ``--ops``
new humans (p50/p95/p99, CPU), the same humans re-captured (must be refused), and the
baselines (empty store; full scan with the compiled decoder and with galois's).

    .venv/bin/python scripts/bench/humanity.py --population 1000,10000 --ops 40 \
        --postgres postgresql://postgres@127.0.0.1:5432/postgres

``--postgres`` adds the service's path: the pipeline in a worker thread reading its
candidates from SQLite and from a throwaway PostgreSQL database holding the
population's users, enrollments and tags.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from services.identity.humanity import pipeline  # noqa: E402
from services.identity.humanity import synthetic as syn  # noqa: E402

SEED = 99
STRANGER = "stranger's genome"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(calls: list[Callable[[], object]]) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - start


def _inputs(first: int, count: int) -> list[tuple[bytes, bytes, bytes, bytes]]:
    out = []
    for p in range(first, first + count):
        who = syn.make_person(SEED, p)
        out.append(
            (
                syn.iris_image(who, 0),
                syn.genome_vcf(who, 0),
                syn.iris_image(who, 1),
                syn.genome_fasta(who, 1),
            )
        )
    return out


def _verify_loop(args: tuple[int, int]) -> float:
    """Worker: enroll ``count`` people, then time reproducing them -> seconds."""
    first, count = args
    pipeline.warm_up()
    data = _inputs(first, count)
    empty = pipeline.InMemoryTemplateStore()
    helpers = [pipeline.enroll(i0, g0, "vcf", existing=empty).helper_data for i0, g0, _, _ in data]
    start = time.perf_counter()
    for (_, _, i1, g1), helper in zip(data, helpers, strict=True):
        with contextlib.suppress(pipeline.CaptureMismatch):  # a rejection costs the same
            pipeline.reproduce(i1, g1, "fasta", helper)
    return time.perf_counter() - start


def row(name: str, latencies: list[float], total: float) -> str:
    return (
        f"| {name} | {len(latencies)} | {1000 * statistics.median(latencies):.0f} | "
        f"{1000 * _pct(latencies, 0.95):.0f} | {len(latencies) / total:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--enrolled", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    parser.add_argument(
        "--population",
        default="",
        help="duplicate check at scale: enrolled population sizes, e.g. 1000,10000",
    )
    parser.add_argument("--scan", type=int, default=100, help="baseline full-scan size")
    parser.add_argument(
        "--postgres",
        default="",
        help="also enroll through SQLite and a throwaway PostgreSQL database holding the "
        "population "
        "(admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    args = parser.parse_args()
    if args.population:
        from scripts.bench.humanity_scale import at_scale

        sizes = [int(size) for size in args.population.split(",")]
        report = at_scale(sizes, args.ops, args.scan, args.workers, args.postgres)
        print(report)
        if args.write:
            args.write.write_text(report + "\n")
        return

    t0 = time.perf_counter()
    pipeline.warm_up()
    warm = time.perf_counter() - t0

    data = _inputs(0, args.ops)
    empty = pipeline.InMemoryTemplateStore()
    enrollments: list[pipeline.Enrollment] = []

    def enroll_one(d: tuple[bytes, bytes, bytes, bytes]) -> Callable[[], object]:
        return lambda: enrollments.append(pipeline.enroll(d[0], d[1], "vcf", existing=empty))

    rejected: list[str] = []

    def verify_one(
        d: tuple[bytes, bytes, bytes, bytes], e: pipeline.Enrollment
    ) -> Callable[[], object]:
        def call() -> object:
            try:
                return pipeline.reproduce(d[2], d[3], "fasta", e.helper_data)
            except pipeline.CaptureMismatch as error:  # a genuine rejection (FRR), timed too
                rejected.append(error.modality)
                return None

        return call

    enroll_lat, enroll_total = _timed([enroll_one(d) for d in data])
    verify_lat, verify_total = _timed(
        [verify_one(d, e) for d, e in zip(data, enrollments, strict=True)]
    )
    # a population already enrolled: the duplicate check scans it
    population = pipeline.InMemoryTemplateStore()
    for i, e in enumerate(enrollments):
        population.add(f"p{i}", e.helper_data)
    extra = _inputs(args.ops, max(0, args.enrolled - args.ops))
    for i, (i0, g0, _, _) in enumerate(extra):
        population.add(f"x{i}", pipeline.enroll(i0, g0, "vcf", existing=empty).helper_data)
    newcomers = _inputs(args.ops + len(extra), max(5, args.ops // 4))

    def enroll_into_population(d: tuple[bytes, bytes, bytes, bytes]) -> Callable[[], object]:
        return lambda: pipeline.enroll(d[0], d[1], "vcf", existing=population)

    dup_lat, dup_total = _timed([enroll_into_population(d) for d in newcomers])

    # throughput with several processes verifying side by side
    per = max(5, args.ops // 2)
    # spawn, not fork: this process has numba's runtime loaded, and forked children of it
    # can deadlock on its locks
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool:
        durations = pool.map(_verify_loop, [(1000 + w * per, per) for w in range(args.workers)])
    parallel_rate = args.workers * per / max(durations)

    scan_per_human = (statistics.median(dup_lat) - statistics.median(enroll_lat)) / len(population)
    lines = [
        f"Host: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (a shared host: other work ran).",
        "",
        f"Warm-up (BCH tables + decoder JIT, once per process): {warm:.1f} s.",
        "",
        "| operation | calls | p50 ms | p95 ms | calls/s (1 process) |",
        "|---|---|---|---|---|",
        row("enroll, empty store", enroll_lat, enroll_total),
        row(f"enroll, {len(population)} enrolled (duplicate scan)", dup_lat, dup_total),
        row("reproduce (verify / recover key)", verify_lat, verify_total),
        "",
        f"Genuine re-captures rejected during the run (counted in the timings): {len(rejected)} "
        f"of {len(verify_lat)}.",
        f"Verification throughput with {args.workers} processes: {parallel_rate:.1f} calls/s.",
        f"Duplicate scan cost: about {1000 * scan_per_human:.1f} ms per enrolled human.",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        command = (
            f".venv/bin/python scripts/bench/humanity.py --ops {args.ops} "
            f"--enrolled {args.enrolled} --workers {args.workers}"
        )
        args.write.write_text(
            f"# Benchmark: proof of humanity\n\nCommand: `{command}`\n\n{report}\n"
        )
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
