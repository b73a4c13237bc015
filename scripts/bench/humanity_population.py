"""An enrolled population of synthetic humans for the duplicate-check benchmark.

Every record is what the identity service stores for a real enrollment: ``enroll`` runs
on a synthetic capture (PNG eye image, panel VCF) and its helper data and index tags are
kept, nothing else. Building costs ~50 ms of CPU a human, so the records are made by
``workers`` processes, ``CHUNK`` humans a file, and cached under the system's temporary
directory: a later run (or a larger population) reuses the chunks already there. The
cache directory's name carries a fingerprint of the code that shapes the records (the
pipeline, index, iris, genome, features and synthetic modules) and of the benchmark's
index key, so records made by other code are never reused.

    .venv/bin/python scripts/bench/humanity_population.py --size 10000 --workers 2
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from services.identity.humanity import index, pipeline  # noqa: E402
from services.identity.humanity import synthetic as syn  # noqa: E402
from services.kit.errors import DomainError  # noqa: E402

# The benchmark's own index key (the population is cached with tags made under it).
BENCH_KEY = index.IndexKey(b"keiko-bench-humanity-index-key-v1")
POPULATION_SEED = 4242
CHUNK = 250
_SHAPING_MODULES = ("iris", "genome", "features", "panel", "synthetic")


@dataclass(frozen=True)
class EnrolledHuman:
    person: int  # synthetic person number (POPULATION_SEED)
    helper_data: bytes
    tags: tuple[int, ...]


@functools.cache
def cache_dir() -> Path:
    """Named after the key, the seed, the capture and feature code (sources) and what the
    pipeline makes of person 0 (tags, helper data layout): any change that would alter
    the records changes the directory."""
    digest = hashlib.sha256(BENCH_KEY.key_id.encode() + str(POPULATION_SEED).encode())
    package = ROOT / "services" / "identity" / "humanity"
    for name in _SHAPING_MODULES:
        digest.update((package / f"{name}.py").read_bytes())
    pipeline.warm_up()
    who = syn.make_person(POPULATION_SEED, 0)
    store = pipeline.InMemoryTemplateStore(BENCH_KEY)
    sample = pipeline.enroll(syn.iris_image(who, 0), syn.genome_vcf(who, 0), "vcf", existing=store)
    digest.update(repr((sample.index_tags, len(sample.helper_data))).encode())
    digest.update(sample.helper_data[:4])
    return Path(tempfile.gettempdir()) / f"keiko-bench-humanity-{digest.hexdigest()[:16]}"


def _chunk_path(first: int) -> Path:
    return cache_dir() / f"people-{first:07d}-{CHUNK}.npz"


def _enroll_chunk(first: int) -> int:
    """Worker: enroll persons ``first .. first + CHUNK - 1`` and write their chunk file."""
    pipeline.warm_up(BENCH_KEY)
    store = pipeline.InMemoryTemplateStore(BENCH_KEY)  # empty: each enrolls as new
    people: list[EnrolledHuman] = []
    for person in range(first, first + CHUNK):
        who = syn.make_person(POPULATION_SEED, person)
        try:
            done = pipeline.enroll(
                syn.iris_image(who, 0), syn.genome_vcf(who, 0), "vcf", existing=store
            )
        except DomainError:  # a capture the pipeline refuses: a failure to enroll
            continue
        people.append(EnrolledHuman(person, done.helper_data, done.index_tags))
    path = _chunk_path(first)
    partial = path.with_suffix(".tmp.npz")
    np.savez(
        partial,
        persons=np.array([p.person for p in people], np.int64),
        helpers=np.array([np.frombuffer(p.helper_data, np.uint8) for p in people]),
        tags=np.array([t for p in people for t in p.tags], np.int64),
        counts=np.array([len(p.tags) for p in people], np.int64),
    )
    partial.replace(path)  # a chunk file is complete or absent
    return len(people)


def _load_chunk(first: int) -> list[EnrolledHuman]:
    cached = np.load(_chunk_path(first), allow_pickle=False)
    helpers, tags, counts = cached["helpers"], cached["tags"], cached["counts"]
    ends = np.cumsum(counts)
    return [
        EnrolledHuman(
            int(person), helpers[i].tobytes(), tuple(tags[ends[i] - counts[i] : ends[i]].tolist())
        )
        for i, person in enumerate(cached["persons"])
    ]


def _build(firsts: list[int], workers: int) -> None:
    missing = [first for first in firsts if not _chunk_path(first).exists()]
    if not missing:
        return
    cache_dir().mkdir(parents=True, exist_ok=True)
    t0, done = time.perf_counter(), 0
    # spawn, not fork: a parent with numba's runtime loaded can deadlock forked children
    with mp.get_context("spawn").Pool(workers) as pool:
        for count in pool.imap_unordered(_enroll_chunk, missing):
            done += 1
            print(
                f"  population: chunk {done}/{len(missing)} ({count} enrolled), "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    print(f"built {len(missing)} chunks in {time.perf_counter() - t0:.0f} s in {cache_dir()}")


def population(size: int, workers: int) -> list[EnrolledHuman]:
    """The first ``size`` enrolled synthetic humans (building the missing chunks; a few
    captures fail to enroll, so a chunk may hold fewer than CHUNK)."""
    people: list[EnrolledHuman] = []
    first = 0
    while len(people) < size:
        firsts = list(range(first, first + CHUNK * -(-(size - len(people)) // CHUNK), CHUNK))
        _build(firsts, workers)
        people += [human for at in firsts for human in _load_chunk(at)]
        first = firsts[-1] + CHUNK
    return people[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    people = population(args.size, args.workers)
    print(f"{len(people)} enrolled humans in {cache_dir()}")


if __name__ == "__main__":
    main()
