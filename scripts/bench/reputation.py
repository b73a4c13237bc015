"""Reputation recompute time at 100,000 ratings, on SQLite and PostgreSQL.

    .venv/bin/python scripts/bench/reputation.py                       # SQLite only
    .venv/bin/python scripts/bench/reputation.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    options: --ratings 100000 --users 10000 --runs 7

Seeds a throwaway database (migrated reputation schema) with N ratings over N/2 sessions
between `--users` users, spread over 60 days, ~10 % flagged, some unrevealed, then times:

- scan:      one SELECT of every rating's columns (rated, role, score, time, revealed,
             excluded, rater weight) into numpy arrays;
- compute:   every user's current/historical/recent/role scores (numpy bincounts);
- recompute: `ReputationService.recompute_all()` end to end in steady state (scan +
             compute + diff against the stored snapshots; nothing changed, nothing written);
- announce:  `recompute_all()` after one simulated day of decay, which writes a snapshot
             and an outbox event for every user whose score moved.

Prints p50/p95 over `--runs` runs of each (announce runs once per run on a fresh shift).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import insert

from scripts.bench.throwaway import throwaway_postgres
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.migrations import upgrade
from services.reputation.domain import compute_all_scores
from services.reputation.service import ReputationService, StoredHumanityLookup
from services.reputation.storage import (
    Repository,
    flags,
    ratings,
    subject_participants,
    subjects,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "reputation" / "migrations"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
CHUNK = 5000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def seed(db: Database, n_ratings: int, n_users: int) -> None:
    rng = random.Random(7)
    users = [f"user-{i:06d}" for i in range(n_users)]
    subj_rows, part_rows, rating_rows, flag_rows = [], [], [], []
    for s in range(n_ratings // 2):
        tutor, student = rng.sample(users, 2)
        completed = NOW - timedelta(seconds=rng.uniform(0, 60 * 86400))
        closes = completed + timedelta(days=7)
        sid = f"sess-{s}"
        subj_rows.append(
            {
                "kind": "session",
                "subject_id": sid,
                "completed_at": completed,
                "closes_at": closes,
                "context": {},
                "source_event_id": None,
                "created_at": completed,
            }
        )
        part_rows += [
            {"kind": "session", "subject_id": sid, "user_id": tutor, "role": "tutor"},
            {"kind": "session", "subject_id": sid, "user_id": student, "role": "student"},
        ]
        both = rng.random() < 0.8
        for rater, rated, role in ((student, tutor, "student"), (tutor, student, "tutor")):
            created = completed + timedelta(hours=rng.uniform(0, 48))
            rid = str(uuid.uuid4())
            rating_rows.append(
                {
                    "id": rid,
                    "subject_kind": "session",
                    "subject_id": sid,
                    "rater_id": rater,
                    "rated_id": rated,
                    "rater_role": role,
                    "score": rng.choice([3, 4, 4, 5, 5, 5, 2, 1]),
                    "comment": "",
                    "created_at": created,
                    "expires_at": created + timedelta(days=30),
                    "revealed_at": created if both else None,
                    "closes_at": closes,
                    "rater_weight": 0.5 if rng.random() < 0.05 else 1.0,
                    "request_id": None,
                    "digest": "0" * 64,
                }
            )
            if rng.random() < 0.1:
                flag_rows.append(
                    {
                        "rating_id": rid,
                        "reasons": ["burst"],
                        "details": "",
                        "flagged_at": created,
                        "review_status": rng.choice(["open", "dismissed", "upheld"]),
                    }
                )
    async with db.transaction() as session:
        for table, rows in (
            (subjects, subj_rows),
            (subject_participants, part_rows),
            (ratings, rating_rows),
            (flags, flag_rows),
        ):
            for i in range(0, len(rows), CHUNK):
                await session.execute(insert(table), rows[i : i + CHUNK])


@dataclass
class Figures:
    """Seconds per run of each step, as `measure` timed them."""

    ratings: int
    rated_users: int
    seeded: float
    scan: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    recompute: list[float] = field(default_factory=list)
    announce: list[float] = field(default_factory=list)
    announced: list[int] = field(default_factory=list)

    def report(self, label: str) -> str:
        lines = [
            f"{label}: {self.ratings} ratings, {self.rated_users} rated users "
            f"(seeded in {self.seeded:.1f} s), {len(self.scan)} runs"
        ]
        for name, values in (
            ("scan (SELECT -> numpy)", self.scan),
            ("compute (numpy)", self.compute),
            ("recompute_all, steady", self.recompute),
            (
                f"recompute_all, announce {min(self.announced)}-{max(self.announced)}",
                self.announce,
            ),
        ):
            lines.append(
                f"  {name:<34} p50 {pct(values, 0.5) * 1000:8.1f} ms   "
                f"p95 {pct(values, 0.95) * 1000:8.1f} ms   "
                f"mean {statistics.fmean(values) * 1000:8.1f} ms"
            )
        return "\n".join(lines)


async def migrate(db: Database) -> None:
    """The reputation schema at migration head, on a fresh database."""
    await db.create_schemas()
    await upgrade(db, "reputation", MIGRATIONS)


async def measure(db: Database, n_ratings: int, n_users: int, runs: int) -> Figures:
    """Seed a migrated, empty reputation schema, then time every step `runs` times."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = time.perf_counter()
    await seed(db, n_ratings, n_users)
    seeded = time.perf_counter() - started
    clock = FixedClock(NOW)
    service = ReputationService(db, clock, StoredHumanityLookup(db))
    await service.recompute_all()  # first snapshots of everyone
    figures = Figures(ratings=n_ratings, rated_users=0, seeded=seeded)
    for _ in range(runs):
        t0 = time.perf_counter()
        async with db.session() as session:
            columns = await Repository(session).rating_columns(clock.now())
        t1 = time.perf_counter()
        scores = compute_all_scores(columns, clock.now())
        t2 = time.perf_counter()
        figures.rated_users = len(scores)
        figures.scan.append(t1 - t0)
        figures.compute.append(t2 - t1)
        t0 = time.perf_counter()
        assert await service.recompute_all() == 0
        figures.recompute.append(time.perf_counter() - t0)
        clock.advance(timedelta(days=1))
        t0 = time.perf_counter()
        figures.announced.append(await service.recompute_all())
        figures.announce.append(time.perf_counter() - t0)
    return figures


async def bench(url: str, label: str, n_ratings: int, n_users: int, runs: int) -> None:
    db = Database(url, schemas=["reputation"])
    try:
        await migrate(db)
        figures = await measure(db, n_ratings, n_users, runs)
        print(figures.report(label))
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", help="admin URL; a throwaway database is created there")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="keiko-bench-") as tmp:
            await bench(
                f"sqlite+aiosqlite:///{tmp}/keiko.db", "SQLite", args.ratings, args.users, args.runs
            )
    if args.postgres:
        async with throwaway_postgres(args.postgres) as url:
            await bench(url, "PostgreSQL", args.ratings, args.users, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
