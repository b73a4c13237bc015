"""Benchmark: proof-of-humanity enrollment and verification latency and throughput.

Synthetic captures (320x240 PNG eye images, panel VCF/FASTA genomes) are generated
before timing; each timed call is the public API from bytes to keys:

* warm-up: building the BCH codes and JIT-compiling galois' decoder (once a process);
* ``enroll`` with an empty template store (the enrollment itself);
* ``enroll`` with ``--enrolled`` humans already in the store (the duplicate check
  runs the fuzzy extractor against each of them: linear in the population);
* ``reproduce`` (verification / key recovery) of a new capture.

Latencies are p50/p95 over ``--ops`` calls in one process; throughput is calls per
second of that sequential loop, and of ``--workers`` processes running it side by side.

    .venv/bin/python scripts/bench/humanity.py [--ops 40] [--enrolled 100] [--workers 2] \
        [--write FILE]

``--population N`` measures the duplicate check at scale instead: N synthetic humans are
enrolled once (``--workers`` processes) and cached under ``.venv/tmp/`` (helper data and
index tags of synthetic people, nothing else), then, in one process and one run:

* enrollment of ``--ops`` new humans into the N enrolled with the index (p50/p95);
* the same human re-captured (own genome, and a stranger's genome: the iris alone)
  must be refused, counted and timed;
* baseline, same newcomers: the full scan (no index) over ``--scan`` of the enrolled,
  with the compiled decoder and with galois's decoder (the previous implementation),
  as milliseconds per enrolled human.

    nice -n 10 .venv/bin/python scripts/bench/humanity.py --population 10000 --ops 40 \
        --postgres postgresql://postgres@127.0.0.1:5432/postgres

``--postgres`` adds the service's path: the pipeline in a worker thread reading its
candidates from SQLite and from a scratch PostgreSQL database (created and dropped)
holding the population's users, enrollments and tags.
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

import numpy as np  # noqa: E402

from services.identity.humanity import features, fuzzy, index, pipeline  # noqa: E402
from services.identity.humanity import synthetic as syn  # noqa: E402
from services.kit.errors import DomainError  # noqa: E402

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


# The benchmark's own index key (the population is cached with tags made under it).
BENCH_KEY = index.IndexKey(b"keiko-bench-humanity-index-key-v1")
CACHE_DIR = ROOT / ".venv" / "tmp"
POPULATION_SEED = 4242


Enrolled = tuple[int, bytes, tuple[int, ...]]  # person, helper data, index tags


def _enroll_people(args: tuple[int, int]) -> list[Enrolled]:
    """Worker: enroll people ``first..first+count`` (capture 0, VCF)."""
    first, count = args
    pipeline.warm_up()
    out = []
    store = pipeline.InMemoryTemplateStore(BENCH_KEY)
    for p in range(first, first + count):
        who = syn.make_person(POPULATION_SEED, p)
        image, genome = syn.iris_image(who, 0), syn.genome_vcf(who, 0)
        try:
            done = pipeline.enroll(image, genome, "vcf", existing=store)
        except DomainError:  # a capture the pipeline refuses: a failure to enroll
            continue
        out.append((p, done.helper_data, done.index_tags))
    return out


def population(size: int, workers: int) -> list[Enrolled]:
    """``size`` enrolled synthetic humans, built once and cached on disk."""
    path = CACHE_DIR / f"humanity-population-{POPULATION_SEED}-{size}-{BENCH_KEY.key_id}.npz"
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        persons, helpers = cached["persons"], cached["helpers"]
        tags, counts = cached["tags"], cached["counts"]
        ends = np.cumsum(counts)
        return [
            (
                int(persons[i]),
                helpers[i].tobytes(),
                tuple(int(t) for t in tags[ends[i] - counts[i] : ends[i]]),
            )
            for i in range(len(persons))
        ]
    chunk = 250
    jobs = [(first, min(chunk, size - first)) for first in range(0, size, chunk)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        people = [item for part in pool.map(_enroll_people, jobs) for item in part]
    print(
        f"built {len(people)} enrollments ({size - len(people)} failures to enroll) in "
        f"{time.perf_counter() - t0:.0f} s; cached in {path}"
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        persons=np.array([p for p, _, _ in people], np.int64),
        helpers=np.array([np.frombuffer(h, np.uint8) for _, h, _ in people]),
        tags=np.array([t for _, _, tags in people for t in tags], np.int64),
        counts=np.array([len(tags) for _, _, tags in people], np.int64),
    )
    return people


def _galois_decode(params: fuzzy.BchParams, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous decoder (galois, one numba thread), for the baseline."""
    import galois
    import numba

    numba.set_num_threads(1)
    code = fuzzy._code(params.n, params.k)
    messages, errors = code.decode(galois.GF2(words), output="message", errors=True)
    return np.asarray(messages, np.uint8), np.asarray(errors, np.int64)


def at_scale(args: argparse.Namespace) -> str:
    t0 = time.perf_counter()
    pipeline.warm_up()
    warm = time.perf_counter() - t0
    enrolled = population(args.population, args.workers)
    persons = [p for p, _, _ in enrolled]
    people = [(helper, tags) for _, helper, tags in enrolled]
    store = pipeline.InMemoryTemplateStore(BENCH_KEY)
    for i, (helper, tags) in enumerate(people):
        store.add(f"h{i}", helper, tags)
    decoded: list[int] = []
    lookup = store.candidates

    def counting(probe: index.Probe) -> list[tuple[str, bytes]]:
        found = list(lookup(probe))
        decoded.append(len(found))
        return found

    store.candidates = counting  # type: ignore[method-assign]
    size = len(people)
    newcomers = [
        syn.make_person(POPULATION_SEED, args.population + 1000 + i) for i in range(args.ops)
    ]
    new_inputs = [(syn.iris_image(w, 0), syn.genome_vcf(w, 0)) for w in newcomers]

    def enroll_into(
        into: pipeline.InMemoryTemplateStore, d: tuple[bytes, bytes]
    ) -> Callable[[], object]:
        return lambda: pipeline.enroll(d[0], d[1], "vcf", existing=into)

    new_lat, new_total = _timed([enroll_into(store, d) for d in new_inputs])
    new_decoded = decoded[:]
    # the same humans again, under another account: own genome, or a stranger's
    again = [syn.make_person(POPULATION_SEED, persons[(i * 7919) % size]) for i in range(args.ops)]
    stranger = syn.make_person(POPULATION_SEED, args.population + 999)
    verdicts: dict[str, list[str]] = {"own genome": [], STRANGER: []}

    def enroll_again(who: syn.SyntheticPerson, capture: int, kind: str) -> Callable[[], object]:
        genome = syn.genome_fasta(stranger if kind == STRANGER else who, capture)
        image = syn.iris_image(who, capture)

        def call() -> object:
            try:
                pipeline.enroll(image, genome, "fasta", existing=store)
                verdicts[kind].append("enrolled")
            except pipeline.DuplicateHuman as duplicate:
                verdicts[kind].append(duplicate.modality)
            return None

        return call

    dup_own, dup_own_total = _timed([enroll_again(w, 1, "own genome") for w in again])
    db_rows = []
    if args.postgres:
        again_inputs = [(syn.iris_image(w, 3), syn.genome_vcf(w, 3)) for w in again]
        db_rows = through_databases(people, new_inputs, again_inputs, args.postgres)
    dup_iris, dup_iris_total = _timed([enroll_again(w, 2, STRANGER) for w in again])

    # baseline: the full scan (records without tags) over part of the population
    scan = pipeline.InMemoryTemplateStore(BENCH_KEY)
    for i, (helper, _) in enumerate(people[: args.scan]):
        scan.add(f"h{i}", helper)
    probes = new_inputs[: max(3, args.ops // 8)]
    scan_lat, scan_total = _timed([enroll_into(scan, d) for d in probes])
    compiled = fuzzy._decode
    fuzzy._decode = _galois_decode  # type: ignore[assignment]
    try:
        for params in (features.IRIS_ECC, features.GENOME_ECC):  # galois JIT, untimed
            _galois_decode(params, np.zeros((1, params.n), np.uint8))
        galois_scan = max(10, args.scan // 20)
        small = pipeline.InMemoryTemplateStore(BENCH_KEY)
        for i, (helper, _) in enumerate(people[:galois_scan]):
            small.add(f"h{i}", helper)
        galois_lat, galois_total = _timed([enroll_into(small, d) for d in probes])
    finally:
        fuzzy._decode = compiled  # type: ignore[assignment]
    empty = pipeline.InMemoryTemplateStore(BENCH_KEY)
    base_lat, base_total = _timed([enroll_into(empty, d) for d in probes])
    base = statistics.median(base_lat)
    per_compiled = (statistics.median(scan_lat) - base) / args.scan
    per_galois = (statistics.median(galois_lat) - base) / galois_scan
    per_indexed = (statistics.median(new_lat) - base) / size

    def refused(kind: str) -> str:
        found = verdicts[kind]
        return f"{sum(v != 'enrolled' for v in found)} of {len(found)}"

    lines = [
        f"Host: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f} "
        "(a shared host: other work ran).",
        "",
        f"Warm-up (BCH tables, decoder JIT): {warm:.1f} s. Enrolled population: {size} "
        f"synthetic humans (index tags per human: "
        f"{statistics.mean(len(t) for _, t in people):.0f}).",
        "",
        "| operation | calls | p50 ms | p95 ms | calls/s |",
        "|---|---|---|---|---|",
        row("enroll, empty store (reference)", base_lat, base_total),
        row(f"enroll a new human, {size} enrolled, index", new_lat, new_total),
        row(f"same human again (own genome), {size} enrolled", dup_own, dup_own_total),
        row(f"same eye, stranger's genome, {size} enrolled", dup_iris, dup_iris_total),
        *db_rows,
        row(f"baseline: full scan of {args.scan}, compiled decoder", scan_lat, scan_total),
        row(f"baseline: full scan of {galois_scan}, galois decoder", galois_lat, galois_total),
        "",
        f"Records decoded per new enrollment (index candidates): median "
        f"{statistics.median(new_decoded):.0f}, max {max(new_decoded)} of {size}.",
        f"Duplicates refused: own genome {refused('own genome')}, stranger's genome "
        f"(iris alone) {refused(STRANGER)}.",
        f"Cost per enrolled human: full scan with galois {1000 * per_galois:.2f} ms, full scan "
        f"with the compiled decoder {1000 * per_compiled:.2f} ms, with the index "
        f"{1000 * per_indexed:.4f} ms (median enrollment minus the empty-store one, divided "
        "by the population).",
    ]
    return "\n".join(lines)


async def _fill(db_url: str, people: list[tuple[bytes, tuple[int, ...]]]) -> None:
    """The identity tables with ``people`` enrolled (users, enrollments, index tags)."""
    from datetime import UTC, datetime

    from services.identity.humanity_storage import humanity_enrollments, humanity_index_tags
    from services.identity.storage import metadata, users
    from services.kit.db import Database

    db = Database(db_url, schemas=["identity"])
    try:
        await db.create_schemas()
        await db.create_all(metadata)
        now = datetime.now(UTC)
        step = 500
        for at in range(0, len(people), step):
            part = list(enumerate(people[at : at + step], start=at))
            async with db.transaction() as session:
                await session.execute(
                    users.insert(),
                    [
                        {
                            "id": f"h{i}",
                            "email": f"h{i}@bench.invalid",
                            "display_name": f"h{i}",
                            "user_handle": i.to_bytes(8, "big"),
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i, _ in part
                    ],
                )
                await session.execute(
                    humanity_enrollments.insert(),
                    [
                        {
                            "user_id": f"h{i}",
                            "id": f"e{i}",
                            "helper_data": helper,
                            "commitment": f"0x{i:x}",
                            "ed25519_public_key": f"{i:064x}",
                            "registration_state": "registered",
                            "registry_tx_hash": "",
                            "registration_attempts": 0,
                            "registration_error": "",
                            "enrolled_at": now,
                            "updated_at": now,
                            "index_key_id": BENCH_KEY.key_id,
                        }
                        for i, (helper, _) in part
                    ],
                )
                await session.execute(
                    humanity_index_tags.insert(),
                    [{"user_id": f"h{i}", "tag": t} for i, (_, tags) in part for t in tags],
                )
    finally:
        await db.dispose()


async def _enroll_through_db(
    db_url: str, inputs: list[tuple[bytes, bytes]]
) -> tuple[list[float], float, list[str]]:
    """The service's duplicate check: the pipeline in a worker thread, candidates read
    from the database on the event loop (IndexedHelperStore)."""
    import asyncio

    from services.identity.humanity_storage import IndexedHelperStore
    from services.kit.db import Database

    db = Database(db_url, schemas=["identity"])
    loop = asyncio.get_running_loop()
    latencies, verdicts = [], []
    start = time.perf_counter()
    try:
        for image, genome in inputs:
            store = IndexedHelperStore(db, BENCH_KEY, loop)
            t0 = time.perf_counter()
            try:
                await asyncio.to_thread(pipeline.enroll, image, genome, "vcf", existing=store)
                verdicts.append("enrolled")
            except pipeline.DuplicateHuman as duplicate:
                verdicts.append(duplicate.modality)
            latencies.append(time.perf_counter() - t0)
    finally:
        await db.dispose()
    return latencies, time.perf_counter() - start, verdicts


async def _one_engine(
    engine: str,
    url: str,
    pg_name: str | None,
    plain_admin: str,
    people: list[tuple[bytes, tuple[int, ...]]],
    newcomers: list[tuple[bytes, bytes]],
    again: list[tuple[bytes, bytes]],
) -> list[str]:
    import asyncpg

    if pg_name:
        conn = await asyncpg.connect(plain_admin)
        await conn.execute(f'CREATE DATABASE "{pg_name}"')
        await conn.close()
    try:
        t0 = time.perf_counter()
        await _fill(url, people)
        filled = time.perf_counter() - t0
        lat, total, _ = await _enroll_through_db(url, newcomers)
        dup, dup_total, verdicts = await _enroll_through_db(url, again)
    finally:
        if pg_name:
            conn = await asyncpg.connect(plain_admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await conn.close()
    refused = sum(v != "enrolled" for v in verdicts)
    return [
        row(f"{engine}: enroll a new human, {len(people)} enrolled", lat, total),
        row(f"{engine}: same human again ({refused} of {len(verdicts)} refused)", dup, dup_total),
        f"<!-- {engine}: population written in {filled:.0f} s -->",
    ]


def through_databases(
    people: list[tuple[bytes, tuple[int, ...]]],
    newcomers: list[tuple[bytes, bytes]],
    again: list[tuple[bytes, bytes]],
    postgres_admin: str,
) -> list[str]:
    """Rows: enrollment through SQLite and PostgreSQL holding the population."""
    import asyncio
    import tempfile
    import uuid

    from sqlalchemy.engine import make_url

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, str, str | None]] = [
            ("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", None)
        ]
        name = f"keiko_bench_{uuid.uuid4().hex[:8]}"
        admin = make_url(postgres_admin)
        targets.append(
            (
                "PostgreSQL",
                admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                    hide_password=False
                ),
                name,
            )
        )
        plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        for engine, url, pg_name in targets:
            rows += asyncio.run(_one_engine(engine, url, pg_name, plain, people, newcomers, again))
    return rows


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
    parser.add_argument("--population", type=int, default=0, help="duplicate check at scale")
    parser.add_argument("--scan", type=int, default=200, help="baseline full-scan size")
    parser.add_argument(
        "--postgres",
        default="",
        help="also enroll through SQLite and PostgreSQL holding the population "
        "(admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    args = parser.parse_args()
    if args.population:
        report = at_scale(args)
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
