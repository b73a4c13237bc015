"""Community services benchmarks: one function per scenario, each on SQLite and PostgreSQL.

    python -m scripts.bench.community                       # every scenario, both engines
    python -m scripts.bench.community --backend sqlite --scenario marketplace.one_space
    python -m scripts.bench.community --scenario reputation.recompute --ratings 20000
    python -m scripts.bench.community --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

Marketplace scenarios drive `MarketplaceService.create_reservation` (the full write path:
validation, availability in the space's time zone, the insert the database checks for
overlaps, the outbox event) with `--concurrency` requests in flight, each in its own
transaction and pooled connection:

- `marketplace.one_space`: contention. Every request targets one space and one of a few
  one-hour slots, so most collide; the database's no-overlap constraint (exclusion
  constraint on PostgreSQL, trigger on SQLite) turns all but one per slot into
  ALREADY_EXISTS. Reports attempts/s, successes, conflicts and latency percentiles.
- `marketplace.spread`: the same load spread over many spaces and slots, no collisions.

- `reputation.recompute`: `ReputationService.recompute_all()` at `--ratings` ratings
  (default 100,000) between `--users` users, `--runs` times; the seeding and the timed steps
  are `scripts/bench/reputation.py`'s (`measure`), which documents them. At 100,000 ratings
  this takes about 35 s per engine on 2 loaded cores, a third of it seeding; `--ratings`
  shrinks it.

Each scenario gets a fresh database (a temporary SQLite directory, or a throwaway
PostgreSQL database created and dropped here) with its service's schema (the scenario
name's prefix) migrated to head. Add another service's scenarios (governance) as further
`async def scenario(db, args) -> Outcome` functions registered in `SCENARIOS`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from scripts.bench import reputation
from scripts.bench.throwaway import throwaway_postgres
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import AlreadyExists
from services.kit.migrations import service_migration_dirs, upgrade
from services.marketplace.reservations.domain import ReservationInput
from services.marketplace.service import MarketplaceService
from services.marketplace.spaces.availability import Availability, WeeklySlot
from services.marketplace.spaces.domain import SpaceInput

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_START = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_SLOT = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday


class Outcome(Protocol):
    """What a scenario returns: a line (or lines) to print, and errors to fail the run on."""

    errors: int

    def line(self) -> str: ...


@dataclass
class Result:
    scenario: str
    backend: str
    attempts: int = 0
    succeeded: int = 0
    conflicts: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    notes: str = ""

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def line(self) -> str:
        rate = self.attempts / self.seconds if self.seconds else 0.0
        ok_rate = self.succeeded / self.seconds if self.seconds else 0.0
        return (
            f"{self.scenario:<24} {self.backend:<10} attempts={self.attempts:<5} "
            f"ok={self.succeeded:<5} conflict={self.conflicts:<5} error={self.errors:<3} "
            f"{rate:8.1f} req/s {ok_rate:8.1f} reservations/s "
            f"p50={self.percentile(50):7.1f}ms p95={self.percentile(95):7.1f}ms "
            f"p99={self.percentile(99):7.1f}ms" + (f"  ({self.notes})" if self.notes else "")
        )


# -- engines --------------------------------------------------------------------------------


@dataclass
class Engine:
    name: str
    make: Callable[[str], Awaitable[tuple[Database, Callable[[], Awaitable[None]]]]]


def sqlite_engine() -> Engine:
    async def make(schema: str) -> tuple[Database, Callable[[], Awaitable[None]]]:
        tmp = tempfile.TemporaryDirectory(prefix="keiko-bench-")
        db = Database(f"sqlite+aiosqlite:///{tmp.name}/keiko.db", schemas=[schema])

        async def cleanup() -> None:
            await db.dispose()
            tmp.cleanup()

        return db, cleanup

    return Engine("sqlite", make)


def postgres_engine(admin_url: str) -> Engine:
    async def make(schema: str) -> tuple[Database, Callable[[], Awaitable[None]]]:
        database = AsyncExitStack()
        url = await database.enter_async_context(throwaway_postgres(admin_url))
        db = Database(url, schemas=[schema])

        async def cleanup() -> None:
            await db.dispose()
            await database.aclose()

        return db, cleanup

    return Engine("postgresql", make)


async def migrated(db: Database, schema: str) -> None:
    await db.create_schemas()
    await upgrade(db, schema, service_migration_dirs()[schema])


# -- marketplace ----------------------------------------------------------------------------

OWNER = Principal(user_id="bench-owner", roles=frozenset({"space_owner"}))
ALWAYS_OPEN = Availability(
    weekly=tuple(WeeklySlot(day, datetime.min.time(), None) for day in range(1, 8))
)


async def _spaces(service: MarketplaceService, count: int) -> list[str]:
    ids = []
    for index in range(count):
        space = await service.spaces.create_space(
            OWNER,
            SpaceInput(
                name=f"Bench space {index}",
                description="",
                address=f"Calle {index}",
                geo=None,
                time_zone="Europe/Madrid",
                capacity=10,
                amenities=(),
                accessibility_features=(),
                rate_currency="EUR",
                rate_minor=2000,
                availability=ALWAYS_OPEN,
            ),
        )
        ids.append(space.id)
    return ids


async def _drive(
    service: MarketplaceService,
    result: Result,
    requests: list[ReservationInput],
    concurrency: int,
) -> Result:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, request: ReservationInput) -> None:
        principal = Principal(user_id=f"tutor-{index}", roles=frozenset({"tutor"}))
        async with gate:
            began = time.perf_counter()
            try:
                await service.reservations.create_reservation(principal, request)
                result.succeeded += 1
            except AlreadyExists:
                result.conflicts += 1
            except Exception as exc:  # counted and shown, never hidden
                result.errors += 1
                if result.errors <= 3:
                    print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr)
            result.latencies_ms.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    result.seconds = time.perf_counter() - began
    result.attempts = len(requests)
    return result


async def marketplace_one_space(db: Database, args: argparse.Namespace) -> Result:
    """Contention on one space: `attempts` requests over `slots` overlapping hours."""
    service = MarketplaceService(db, FixedClock(BENCH_START))
    [space_id] = await _spaces(service, 1)
    slots = max(1, args.slots)
    requests = []
    for index in range(args.attempts):
        # Start at a random-ish quarter hour inside the slot: overlaps, not only duplicates.
        hour = FIRST_SLOT + timedelta(hours=2 * (index % slots))
        start = hour + timedelta(minutes=15 * ((index // slots) % 4))
        requests.append(
            ReservationInput(
                space_id=space_id,
                tutor_id="",
                student_id=f"student-{index}",
                start_time=start,
                end_time=start + timedelta(hours=1),
            )
        )
    result = Result("marketplace.one_space", db.dialect, notes=f"{slots} slots")
    return await _drive(service, result, requests, args.concurrency)


async def marketplace_spread(db: Database, args: argparse.Namespace) -> Result:
    """No contention: `attempts` requests spread over `spaces` spaces, distinct slots."""
    service = MarketplaceService(db, FixedClock(BENCH_START))
    space_ids = await _spaces(service, args.spaces)
    requests = []
    for index in range(args.attempts):
        space = index % len(space_ids)
        start = FIRST_SLOT + timedelta(hours=index // len(space_ids))
        requests.append(
            ReservationInput(
                space_id=space_ids[space],
                tutor_id="",
                student_id=f"student-{index}",
                start_time=start,
                end_time=start + timedelta(hours=1),
            )
        )
    result = Result("marketplace.spread", db.dialect, notes=f"{len(space_ids)} spaces")
    return await _drive(service, result, requests, args.concurrency)


# -- reputation -----------------------------------------------------------------------------


@dataclass
class RecomputeResult:
    scenario: str
    backend: str
    figures: reputation.Figures
    errors: int = 0

    def line(self) -> str:
        return self.figures.report(f"{self.scenario} {self.backend}")


async def reputation_recompute(db: Database, args: argparse.Namespace) -> RecomputeResult:
    """`recompute_all()` at `ratings` ratings, timed as `scripts/bench/reputation.py` does."""
    figures = await reputation.measure(db, args.ratings, args.users, args.runs)
    return RecomputeResult("reputation.recompute", db.dialect, figures)


# A scenario runs on a fresh database where the schema named by its prefix is at head.
Scenario = Callable[[Database, argparse.Namespace], Awaitable[Outcome]]
SCENARIOS: dict[str, Scenario] = {
    "marketplace.one_space": marketplace_one_space,
    "marketplace.spread": marketplace_spread,
    "reputation.recompute": reputation_recompute,
}


# -- main -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> list[Outcome]:
    engines = []
    if args.backend in ("sqlite", "both"):
        engines.append(sqlite_engine())
    if args.backend in ("postgresql", "both"):
        engines.append(postgres_engine(args.postgres_url))
    names = args.scenario or list(SCENARIOS)
    results: list[Outcome] = []
    for name in names:
        schema = name.split(".", 1)[0]
        for engine in engines:
            db, cleanup = await engine.make(schema)
            try:
                await migrated(db, schema)
                result = await SCENARIOS[name](db, args)
            finally:
                await cleanup()
            print(result.line(), flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.community")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--attempts", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--slots", type=int, default=20, help="one_space: distinct slots")
    parser.add_argument("--spaces", type=int, default=100, help="spread: spaces")
    parser.add_argument("--ratings", type=int, default=100_000, help="reputation: ratings")
    parser.add_argument("--users", type=int, default=10_000, help="reputation: users")
    parser.add_argument("--runs", type=int, default=5, help="reputation: timed runs")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KEIKO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="an admin URL; a throwaway database is created and dropped",
    )
    args = parser.parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, attempts={args.attempts}, "
        f"concurrency={args.concurrency}, ratings={args.ratings}, users={args.users}, "
        f"runs={args.runs}",
        flush=True,
    )
    results = asyncio.run(run(args))
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
