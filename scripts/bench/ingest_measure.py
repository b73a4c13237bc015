"""Measuring one scenario of ``scripts.bench.xapi_ingest``: run its requests at a
concurrency, wait until their statements are anchored (``chain.records``), take the CPU of
every process that worked for them over it (the server, the node, PostgreSQL's backends of
the database, Redis, this load generator: the whole budget a statement costs on the
machine); and the report of a run, in the table docs/benchmarks.md quotes."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import asyncpg
from redis.asyncio import Redis

from scripts.bench.ingest import pct, postgres_backends_cpu, process_cpu_seconds
from scripts.bench.pg_floor import Floor


class Measured(Protocol):
    """The platform under measurement (``xapi_ingest.Platform``)."""

    database_url: str  # asyncpg form
    redis_url: str

    def node_pid(self) -> int | None: ...

    def server_cpu_seconds(self, node: int | None) -> float: ...


# -- figures --------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    concurrency: int
    statements: int
    requests: int
    request_seconds: float
    request_latencies: list[float]
    anchored_seconds: float | None  # None: not all anchored before the timeout
    anchor_latencies: list[float]
    stages: list[tuple[float, float, float]]  # request -> queued, -> batched, -> anchored
    batch_sizes: list[int]
    cpu: CpuBudget
    load: tuple[float, float]
    errors: list[str] = field(default_factory=list)

    @property
    def request_rate(self) -> float:
        return self.statements / self.request_seconds

    @property
    def anchored_rate(self) -> float:
        return 0.0 if self.anchored_seconds is None else self.statements / self.anchored_seconds


@dataclass(frozen=True)
class CpuBudget:
    """CPU seconds each process spent over a scenario."""

    server: float
    node: float
    postgres: float  # the backends of the platform's database (the pool keeps them open)
    redis: float  # the whole Redis server (nothing else uses it during a run)
    client: float  # this load generator

    @property
    def total(self) -> float:
        return self.server + self.node + self.postgres + self.redis + self.client

    def __sub__(self, before: CpuBudget) -> CpuBudget:
        return CpuBudget(
            self.server - before.server,
            self.node - before.node,
            self.postgres - before.postgres,
            self.redis - before.redis,
            self.client - before.client,
        )


async def cpu_now(target: Measured, node: int | None, postgres: dict[int, float]) -> CpuBudget:
    """The budget so far; PostgreSQL as the CPU of the backends in ``postgres`` (pid: CPU
    at the start; a backend opened since counts from 0)."""
    redis = Redis.from_url(target.redis_url)
    try:
        info = await redis.info("cpu")
    finally:
        await redis.aclose()
    database = target.database_url.rsplit("/", 1)[1].split("?")[0]
    backends = postgres_backends_cpu(database)
    times = os.times()
    return CpuBudget(
        server=target.server_cpu_seconds(node),
        node=process_cpu_seconds(node) if node else 0.0,
        postgres=sum(backends.values())
        + sum(seconds for pid, seconds in postgres.items() if pid not in backends),
        redis=float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        client=times.user + times.system,
    )


@dataclass(frozen=True)
class Stages:
    """One anchored record's way through the translator (epoch seconds)."""

    queued: float  # chain.records.submitted_at: the intake queued it
    batched: float
    anchored: float
    batch_id: str


async def anchored_times(url: str, ids: Sequence[str], timeout: float) -> dict[str, Stages]:
    """Wait until every record id is anchored; when each was queued, batched, anchored."""
    conn = await asyncpg.connect(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            count = await conn.fetchval(
                "SELECT count(*) FROM chain.records WHERE record_id = ANY($1::text[]) "
                "AND status = 'anchored'",
                list(ids),
            )
            if count >= len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        rows = await conn.fetch(
            "SELECT record_id, submitted_at, batched_at, anchored_at, batch_id "
            "FROM chain.records WHERE record_id = ANY($1::text[]) AND anchored_at IS NOT NULL",
            list(ids),
        )
    finally:
        await conn.close()
    return {
        r["record_id"]: Stages(
            r["submitted_at"].timestamp(),
            r["batched_at"].timestamp(),
            r["anchored_at"].timestamp(),
            r["batch_id"],
        )
        for r in rows
    }


Work = list[tuple[list[str], Callable[[], Awaitable[str | None]]]]


async def run_load(
    calls: list[Callable[[], Awaitable[str | None]]], concurrency: int
) -> tuple[float, list[float], list[str]]:
    """Run ``calls`` at ``concurrency``; (seconds, latencies, errors)."""
    queue = iter(calls)
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        for call in queue:
            started = time.perf_counter()
            error = await call()
            latencies.append(time.perf_counter() - started)
            if error is not None:
                errors.append(error)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


async def measure(
    name: str,
    target: Measured,
    concurrency: int,
    work: Work,
    timeout: float,
) -> Scenario:
    """Run the requests of ``work`` (statement ids, the call sending them) and wait for
    those statements to be anchored."""
    started_at: dict[str, float] = {}
    failed: set[str] = set()

    def timed(
        ids: list[str], call: Callable[[], Awaitable[str | None]]
    ) -> Callable[[], Awaitable[str | None]]:
        async def go() -> str | None:
            now = time.time()
            for statement_id in ids:
                started_at[statement_id] = now
            error = await call()
            if error is not None:
                failed.update(ids)
            return error

        return go

    node = target.node_pid()
    load0 = os.getloadavg()[0]
    database = target.database_url.rsplit("/", 1)[1].split("?")[0]
    backends = postgres_backends_cpu(database)
    cpu0 = await cpu_now(target, node, backends)
    t0 = time.time()
    seconds, latencies, errors = await run_load(
        [timed(ids, call) for ids, call in work], concurrency
    )
    all_ids = [i for ids, _ in work for i in ids if i not in failed]
    anchored = await anchored_times(target.database_url, all_ids, timeout)
    done = len(anchored) == len(all_ids)
    cpu1 = await cpu_now(target, node, backends)
    return Scenario(
        name=name,
        concurrency=concurrency,
        statements=len(all_ids),
        requests=len(work),
        request_seconds=seconds,
        request_latencies=latencies,
        anchored_seconds=(max(a.anchored for a in anchored.values()) - t0) if done else None,
        anchor_latencies=[anchored[i].anchored - started_at[i] for i in all_ids if i in anchored],
        stages=[
            (a.queued - started_at[i], a.batched - a.queued, a.anchored - a.batched)
            for i, a in anchored.items()
        ],
        batch_sizes=sorted(Counter(a.batch_id for a in anchored.values()).values()),
        cpu=cpu1 - cpu0,
        load=(load0, os.getloadavg()[0]),
        errors=sorted(set(errors))[:3]
        + ([f"{len(errors)} requests failed ({len(failed)} statements)"] if errors else [])
        + ([] if done else [f"{len(all_ids) - len(anchored)} not anchored in {timeout} s"]),
    )


# -- report ---------------------------------------------------------------------------------


def report(scenarios: list[Scenario], floors: list[Floor], load: tuple[str, str]) -> str:
    floor = sum(f.rate for f in floors) / len(floors)
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; run on "
        f"{datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}. "
        f"Load (`uptime`), before and after: {load[0]} / {load[1]} (shared machine).",
        "",
        "PostgreSQL floor (one-row JSONB insert, prepared, same database): "
        + ", ".join(f"{f.rate:,.0f} rows/s at c{f.concurrency} ({f.rows} rows)" for f in floors)
        + f"; mean {floor:,.0f} rows/s.",
        "",
        "| path | statements / requests / conc | requests: stmt/s | vs floor | "
        "request p50 / p95 ms | anchored stmt/s | vs floor | anchoring latency "
        "p50 / p95 / p99 s | CPU ms/stmt (server / node) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        anchored = "-" if s.anchored_seconds is None else f"{s.anchored_rate:,.0f}"
        anchored_ratio = (
            "-" if s.anchored_seconds is None else f"{100 * s.anchored_rate / floor:.1f} %"
        )
        lines.append(
            f"| {s.name} | {s.statements} / {s.requests} / {s.concurrency} | "
            f"{s.request_rate:,.0f} | {100 * s.request_rate / floor:.1f} % | "
            f"{1000 * pct(s.request_latencies, 0.5):.0f} / "
            f"{1000 * pct(s.request_latencies, 0.95):.0f} | {anchored} | {anchored_ratio} | "
            f"{pct(s.anchor_latencies, 0.5):.2f} / {pct(s.anchor_latencies, 0.95):.2f} / "
            f"{pct(s.anchor_latencies, 0.99):.2f} | "
            f"{1000 * s.cpu.server / s.statements:.2f} / {1000 * s.cpu.node / s.statements:.2f} |"
        )
    cores = os.cpu_count() or 1
    lines += [
        "",
        "The whole CPU budget of a statement (ms of CPU a statement, every process that "
        f"worked for it) and the rate it allows on {cores} cores if nothing else ran:",
        "",
        "| path | server | node | PostgreSQL | Redis | load generator | total | "
        f"ceiling on {cores} cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        per = [
            1000 * x / s.statements
            for x in (s.cpu.server, s.cpu.node, s.cpu.postgres, s.cpu.redis, s.cpu.client)
        ]
        total = 1000 * s.cpu.total / s.statements
        lines.append(
            f"| {s.name} | " + " | ".join(f"{x:.2f}" for x in per) + f" | {total:.2f} | "
            f"{1000 * cores / total:,.0f} stmt/s |"
        )
    lines.append("")
    for s in scenarios:
        extra = f"; errors: {s.errors}" if s.errors else ""
        stage = [pct([x[k] for x in s.stages], 0.5) for k in range(3)]
        sizes = s.batch_sizes
        lines.append(
            f"- {s.name}: requests took {s.request_seconds:.1f} s, all anchored after "
            f"{'-' if s.anchored_seconds is None else f'{s.anchored_seconds:.1f}'} s; "
            f"per statement (p50) request -> queued by the translator {stage[0]:.2f} s, "
            f"queued -> batched {stage[1]:.2f} s, batched -> anchored {stage[2]:.2f} s; "
            f"{len(sizes)} batches (leaves min/median/max "
            f"{sizes[0] if sizes else 0}/{pct(sizes, 0.5) if sizes else 0}/"
            f"{sizes[-1] if sizes else 0}); 1-min load {s.load[0]:.1f} -> {s.load[1]:.1f}{extra}"
        )
    return "\n".join(lines)
