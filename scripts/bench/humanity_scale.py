"""Benchmark: the proof-of-humanity duplicate check at scale (issue 14, goal 3).

For each population size (default 1,000 and 10,000 enrolled humans, real enrollment
records from ``humanity_population``), in one process and one run:

* ``--ops`` new humans enroll into the population held in memory
  (``InMemoryTemplateStore``), in SQLite and in a throwaway PostgreSQL database (the
  service's path: ``IndexedHelperStore``, the pipeline in a worker thread, the lookup on
  the event loop); latency p50/p95/p99, CPU of this process per enrollment, and the
  records decoded (index candidates);
* the same humans re-captured must be refused: with their own genome, and with a
  stranger's genome (the iris alone);
* baselines in the same run: enrollment into an empty store (no duplicate check to
  speak of), and the full scan (no index) over ``--scan`` records with the compiled
  decoder and over ``--scan // 20`` with galois's decoder (the implementation before);
* where the time of an in-memory enrollment goes at the largest size (cProfile, shares
  of the enrollment's time by stage).

    nice -n 10 .venv/bin/python scripts/bench/humanity.py --population 1000,10000 --ops 40 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import os
import platform
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from scripts.bench.humanity_population import (
    BENCH_KEY,
    POPULATION_SEED,
    EnrolledHuman,
    cache_dir,
    population,
)
from scripts.bench.throwaway import throwaway_postgres
from services.identity.humanity import features, fuzzy, index, pipeline
from services.identity.humanity import synthetic as syn

STRANGER = "stranger's genome"
Capture = tuple[bytes, bytes, str]  # eye image, genome, genome format


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Timings:
    """Wall-clock latency and this process's CPU time per call, and the run's length.

    On a shared host the wall-clock latency mostly measures the wait for a core; the CPU
    per call is what an enrollment costs (its latency on an idle core, less I/O)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    total: float = 0.0

    def row(self, name: str) -> str:
        ms = [1000 * pct(self.wall, q) for q in (0.5, 0.95, 0.99)]
        cpu = [1000 * pct(self.cpu, q) for q in (0.5, 0.95)]
        return (
            f"| {name} | {len(self.wall)} | {ms[0]:.0f} | {ms[1]:.0f} | {ms[2]:.0f} | "
            f"{cpu[0]:.0f} | {cpu[1]:.0f} | {len(self.wall) / self.total:.1f} |"
        )


HEADER = [
    "| operation | calls | p50 ms | p95 ms | p99 ms | CPU p50 ms | CPU p95 ms | calls/s |",
    "|---|---|---|---|---|---|---|---|",
]


def timed(calls: Iterable[Callable[[], object]]) -> Timings:
    out = Timings()
    start = time.perf_counter()
    for call in calls:
        w0, c0 = time.perf_counter(), time.process_time()
        call()
        out.cpu.append(time.process_time() - c0)
        out.wall.append(time.perf_counter() - w0)
    out.total = time.perf_counter() - start
    return out


async def timed_async(calls: Iterable[Callable[[], Awaitable[object]]]) -> Timings:
    out = Timings()
    start = time.perf_counter()
    for call in calls:
        w0, c0 = time.perf_counter(), time.process_time()
        await call()
        out.cpu.append(time.process_time() - c0)
        out.wall.append(time.perf_counter() - w0)
    out.total = time.perf_counter() - start
    return out


class CountingStore(pipeline.InMemoryTemplateStore):
    """The in-memory store, recording how many records each duplicate check decodes."""

    def __init__(self, people: Iterable[EnrolledHuman], *, indexed: bool = True) -> None:
        super().__init__(BENCH_KEY)
        self.decoded: list[int] = []
        for i, human in enumerate(people):
            self.add(f"h{i}", human.helper_data, human.tags if indexed else None)

    def candidates(self, probe: index.Probe) -> list[tuple[str, bytes]]:
        found = list(super().candidates(probe))
        self.decoded.append(len(found))
        return found


def enroll_call(store: pipeline.EnrolledTemplateStore, capture: Capture) -> Callable[[], object]:
    image, genome, fmt = capture

    def call() -> object:
        try:
            return pipeline.enroll(image, genome, fmt, existing=store)  # type: ignore[arg-type]
        except pipeline.DuplicateHuman as duplicate:
            return duplicate.modality

    return call


def timed_results(
    store: pipeline.EnrolledTemplateStore, batch: list[Capture]
) -> tuple[Timings, list[object]]:
    """Timings of enrolling ``batch`` and each outcome (an Enrollment, or the modality
    of the duplicate found)."""
    calls = [enroll_call(store, capture) for capture in batch]
    results: list[object] = []
    return timed([functools.partial(lambda f: results.append(f()), f) for f in calls]), results


def refused(results: list[object]) -> str:
    return f"{sum(isinstance(r, str) for r in results)} of {len(results)}"


@dataclass
class Captures:
    newcomers: list[Capture]
    own_genome: list[Capture]  # enrolled humans again (capture 1, FASTA)
    stranger: list[Capture]  # enrolled humans' eyes (capture 2) with a stranger's genome
    db_again: list[Capture]  # enrolled humans again (capture 3, VCF), through the engines


def captures(persons: list[int], ops: int, first_new: int) -> Captures:
    newcomers = [syn.make_person(POPULATION_SEED, first_new + i) for i in range(ops)]
    again = [
        syn.make_person(POPULATION_SEED, persons[(i * 7919) % len(persons)]) for i in range(ops)
    ]
    stranger = syn.make_person(POPULATION_SEED, first_new - 1)
    return Captures(
        newcomers=[(syn.iris_image(w, 0), syn.genome_vcf(w, 0), "vcf") for w in newcomers],
        own_genome=[(syn.iris_image(w, 1), syn.genome_fasta(w, 1), "fasta") for w in again],
        stranger=[(syn.iris_image(w, 2), syn.genome_fasta(stranger, 2), "fasta") for w in again],
        db_again=[(syn.iris_image(w, 3), syn.genome_vcf(w, 3), "vcf") for w in again],
    )


# -- the service's path: SQLite and PostgreSQL ------------------------------------------------


async def fill(db_url: str, people: list[EnrolledHuman]) -> None:
    """The identity tables with ``people`` enrolled: users, enrollments and index tags,
    as ``HumanityRepository.insert`` writes them, in bulk."""
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
                            "helper_data": human.helper_data,
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
                        for i, human in part
                    ],
                )
                await session.execute(
                    humanity_index_tags.insert(),
                    [{"user_id": f"h{i}", "tag": t} for i, human in part for t in human.tags],
                )
    finally:
        await db.dispose()


async def through_engine(
    engine: str, db_url: str, people: list[EnrolledHuman], caps: Captures
) -> list[str]:
    """Rows: new humans and the same humans again, enrolling against ``db_url``."""
    from services.identity.humanity_storage import IndexedHelperStore
    from services.kit.db import Database

    t0 = time.perf_counter()
    await fill(db_url, people)
    filled = time.perf_counter() - t0
    db = Database(db_url, schemas=["identity"])
    loop = asyncio.get_running_loop()
    lookups: list[float] = []

    class TimedStore(IndexedHelperStore):
        def candidates(self, probe: index.Probe) -> list[tuple[str, bytes]]:
            l0 = time.perf_counter()
            try:
                return super().candidates(probe)
            finally:
                lookups.append(time.perf_counter() - l0)

    results: list[object] = []

    def call(capture: Capture) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            store = TimedStore(db, BENCH_KEY, loop)
            results.append(await asyncio.to_thread(enroll_call(store, capture)))

        return run

    try:
        new = await timed_async([call(c) for c in caps.newcomers])
        new_lookups = lookups[:]
        results.clear()
        again = await timed_async([call(c) for c in caps.db_again])
    finally:
        await db.dispose()
    size = len(people)
    return [
        new.row(f"{engine}: enroll a new human, {size:,} enrolled"),
        again.row(f"{engine}: same human again ({refused(results)} refused), {size:,} enrolled"),
        f"<!-- {engine}, {size:,}: population written in {filled:.0f} s; candidate lookup "
        f"(tags + helper data) p50 {1000 * statistics.median(new_lookups):.0f} ms, p95 "
        f"{1000 * pct(new_lookups, 0.95):.0f} ms -->",
    ]


async def engines(people: list[EnrolledHuman], caps: Captures, postgres_admin: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        rows = await through_engine("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", people, caps)
    async with throwaway_postgres(postgres_admin) as url:
        rows += await through_engine("PostgreSQL", url, people, caps)
    return rows


# -- baselines ------------------------------------------------------------------------------


@functools.cache
def _galois_code(n: int, k: int):  # type: ignore[no-untyped-def]
    import galois

    return galois.BCH(n, k)


def _galois_decode(params: fuzzy.BchParams, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decoder before the compiled one (galois, one numba thread)."""
    import galois
    import numba

    numba.set_num_threads(1)
    code = _galois_code(params.n, params.k)
    messages, errors = code.decode(galois.GF2(words), output="message", errors=True)
    return np.asarray(messages, np.uint8), np.asarray(errors, np.int64)


def galois_scan(people: list[EnrolledHuman], probes: list[Capture]) -> Timings:
    compiled = fuzzy._decode
    fuzzy._decode = _galois_decode  # type: ignore[assignment]
    try:
        for params in (features.IRIS_ECC, features.GENOME_ECC):  # galois's JIT, untimed
            _galois_decode(params, np.zeros((1, params.n), np.uint8))
        store = CountingStore(people, indexed=False)
        return timed([enroll_call(store, c) for c in probes])
    finally:
        fuzzy._decode = compiled  # type: ignore[assignment]


# -- where the time goes --------------------------------------------------------------------

STAGES = [
    ("capture: image decode, segmentation, iris code; genome parse", "pipeline.py", "_capture"),
    ("index probe: the capture's tags at 17 rotations", "index.py", "probe"),
    ("candidate lookup (tags -> records)", "humanity_scale.py", "candidates"),
    ("decode candidates: genome", "pipeline.py", "_rep_genome"),
    ("decode candidates: iris (17 rotations x 2 fills)", "pipeline.py", "_rep_iris"),
    ("new helper data: positions, BCH encode", "fuzzy.py", "gen"),
    ("keys: HKDF, Poseidon commitment, Ed25519", "pipeline.py", "_keys"),
    ("index tags of the new enrollment", "index.py", "enrollment_tags"),
]


def profile_stages(store: CountingStore, probes: list[Capture]) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    for capture in probes:
        enroll_call(store, capture)()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(ct for (f, _, name), (_, _, _, ct, _) in stats.items() if name == "enroll")
    lines = [
        f"Where an enrollment's time goes ({len(probes)} new humans, {len(store):,} enrolled, "
        "in memory; cProfile, so Python-heavy stages are inflated):",
        "",
        "| stage | ms per enrollment | share |",
        "|---|---|---|",
    ]
    for label, filename, function in STAGES:
        spent = sum(
            ct
            for (f, _, name), (_, _, _, ct, _) in stats.items()
            if name == function and f.endswith(filename)
        )
        lines.append(f"| {label} | {1000 * spent / len(probes):.1f} | {spent / total:.0%} |")
    return lines


# -- the run --------------------------------------------------------------------------------


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def at_scale(sizes: list[int], ops: int, scan: int, workers: int, postgres: str) -> str:
    load_start = load()
    w0, c0 = time.perf_counter(), time.process_time()
    pipeline.warm_up()
    warm = (time.perf_counter() - w0, time.process_time() - c0)
    w0, c0 = time.perf_counter(), time.process_time()
    index.iris_tagger(BENCH_KEY).build()
    table = (time.perf_counter() - w0, time.process_time() - c0)
    people_all = population(max(sizes), workers)
    first_new = max(h.person for h in people_all) + 1000
    lines: list[str] = []
    sections: list[str] = []
    per_human: list[str] = []
    empty_store = CountingStore([])
    reference_caps = captures([h.person for h in people_all[:ops]], ops, first_new)
    base = timed([enroll_call(empty_store, c) for c in reference_caps.newcomers])
    rows = [base.row("reference: enroll into an empty store")]
    for size in sizes:
        people = people_all[:size]
        caps = captures([h.person for h in people], ops, first_new)
        store = CountingStore(people)
        new = timed([enroll_call(store, c) for c in caps.newcomers])
        decoded = store.decoded[:]
        own, own_results = timed_results(store, caps.own_genome)
        alone, alone_results = timed_results(store, caps.stranger)
        rows += [
            new.row(f"enroll a new human, {size:,} enrolled, in memory"),
            own.row(f"same human again, own genome ({refused(own_results)} refused)"),
            alone.row(f"same eye, {STRANGER} ({refused(alone_results)} refused)"),
        ]
        if postgres:
            rows += asyncio.run(engines(people, caps, postgres))
        cost = statistics.median(new.cpu) - statistics.median(base.cpu)
        per_human.append(
            f"* {size:,} enrolled: records decoded per new enrollment median "
            f"{statistics.median(decoded):.0f}, p95 {pct(decoded, 0.95):.0f}, max {max(decoded)} "
            f"({statistics.median(decoded) / size:.2%}); duplicate check "
            f"{1000 * cost:.0f} ms of CPU, {1000 * cost / size:.4f} ms per enrolled human "
            "(median CPU of an enrollment minus the empty-store one)."
        )
        if size == max(sizes):
            sections = profile_stages(store, caps.newcomers[: max(5, ops // 4)])
    probes = reference_caps.newcomers[: max(3, ops // 8)]
    scan_store = CountingStore(people_all[:scan], indexed=False)
    full = timed([enroll_call(scan_store, c) for c in probes])
    galois_size = max(5, scan // 20)
    old = galois_scan(people_all[:galois_size], probes)
    rows += [
        full.row(f"baseline: full scan of {scan}, compiled decoder"),
        old.row(f"baseline: full scan of {galois_size}, galois decoder"),
    ]
    base_cpu = statistics.median(base.cpu)
    per_human += [
        f"* baseline, full scan: {1000 * (statistics.median(full.cpu) - base_cpu) / scan:.2f} ms "
        f"of CPU per enrolled human with the compiled decoder, "
        f"{1000 * (statistics.median(old.cpu) - base_cpu) / galois_size:.1f} ms with galois's.",
    ]
    lines += [
        f"Host: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average (1/5/15 min) {load_start} at the start, "
        f"{load()} at the end.",
        "",
        f"Warm-up: codes and decoder JIT {warm[0]:.1f} s ({warm[1]:.1f} s CPU); the index "
        f"key's iris tag table {table[0]:.1f} s ({table[1]:.1f} s CPU). Population cache: "
        f"{cache_dir()}.",
        "",
        *HEADER,
        *rows,
        "",
        "Duplicate check cost:",
        "",
        *per_human,
        "",
        *sections,
    ]
    return "\n".join(lines)
