"""Benchmark: `keiko serve --workers N` against one worker, same run, same machine.

Starts the whole platform (gateway and every service, no chain node) on a throwaway
PostgreSQL database and a private redis-server, once with 1 worker and once with N,
and loads two cheap read paths with wrk (`GET /xapi/about`, GraphQL `{ __typename }`)
at each concurrency. Reports throughput, p50/p95/p99, the server's CPU (the supervisor
and its workers, user + system) per request and in cores, and the ratio of N workers'
throughput over one worker's (the baseline). wrk shares the machine's cores with the
server: on 2 cores, its own CPU bounds what the server can get.

Needs wrk (Debian package `wrk`); without it the script says so and stops (an httpx
load generator in Python would measure itself, not the server).

    .venv/bin/python scripts/bench/workers.py [--workers 2] [--seconds 10] [--concurrency 16,50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench.stack import (  # noqa: E402
    Platform,
    free_port,
    running_platform,
    server_cpu_seconds,
    uptime,
)
from scripts.bench.wrk import HttpRequest, run_wrk, wrk_path  # noqa: E402

PATHS = {
    "GET /xapi/about": ("/xapi/about", "GET", b""),
    "{ __typename }": ("/graphql", "POST", b'{"query":"{ __typename }"}'),
}


@dataclass
class Run:
    path: str
    workers: int
    concurrency: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return (self.requests - self.errors) / self.seconds

    def row(self, baseline: Run | None) -> str:
        ratio = f"{self.rate / baseline.rate:.2f}x" if baseline and baseline.rate else "1.00x"
        per_request = 1000 * self.cpu_seconds / max(self.requests, 1)
        return (
            f"| {self.path} | {self.workers} | {self.concurrency} | {self.rate:,.0f} | "
            f"{self.p50_ms:.1f} | {self.p95_ms:.1f} | {self.p99_ms:.1f} | {self.errors} | "
            f"{per_request:.2f} | {self.cpu_seconds / self.seconds:.2f} | {ratio} |"
        )


async def load(platform: Platform, name: str, concurrency: int, seconds: float) -> Run:
    path, method, body = PATHS[name]
    headers = {"content-type": "application/json"} if body else {}
    request = HttpRequest(platform.base_url + path, method, headers, body)
    # Warm up (connections, caches), then measure.
    await run_wrk(request, concurrency=concurrency, seconds=2, threads=2)
    before = server_cpu_seconds(platform.pid)
    result = await run_wrk(request, concurrency=concurrency, seconds=seconds, threads=2)
    cpu = server_cpu_seconds(platform.pid) - before
    p = result.percentiles_ms
    return Run(
        name,
        0,
        concurrency,
        result.seconds,
        result.requests,
        result.errors,
        p[50],
        p[95],
        p[99],
        cpu,
    )


@asynccontextmanager
async def private_redis() -> AsyncIterator[str]:
    port = free_port()
    redis = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
        *("--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        await redis.wait()


async def bench(workers: int, seconds: float, concurrencies: list[int]) -> list[Run]:
    runs: list[Run] = []
    async with private_redis() as redis_url:
        await asyncio.sleep(0.5)
        async with running_platform(
            "postgres",
            extra_env={"KEIKO_WORKERS": str(workers), "KEIKO_EVENT_BUS_URL": redis_url},
        ) as platform:
            # The background jobs' own CPU (relays, consumers: per worker), unloaded.
            await asyncio.sleep(3)
            before = server_cpu_seconds(platform.pid)
            await asyncio.sleep(seconds)
            idle = (server_cpu_seconds(platform.pid) - before) / seconds
            print(f"{workers} worker(s): idle server CPU {idle:.3f} cores", flush=True)
            for name in PATHS:
                for concurrency in concurrencies:
                    run = await load(platform, name, concurrency, seconds)
                    run.workers = workers
                    runs.append(run)
    return runs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", default="16,50")
    args = parser.parse_args()
    if wrk_path() is None:
        raise SystemExit("wrk is not installed (Debian package `wrk`): this bench needs it")
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed: this bench runs its own Redis")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print(f"before: {uptime()}  ({os.cpu_count()} CPUs)")
    single = await bench(1, args.seconds, concurrencies)
    several = await bench(args.workers, args.seconds, concurrencies)
    print(f"after:  {uptime()}")
    print(
        "| path | workers | clients | req/s | p50 ms | p95 ms | p99 ms | errors | "
        "server CPU ms/req | server cores | vs 1 worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    baseline = {(r.path, r.concurrency): r for r in single}
    for run in sorted([*single, *several], key=lambda r: (r.path, r.concurrency, r.workers)):
        base = baseline[(run.path, run.concurrency)]
        print(run.row(None if run is base else base))


if __name__ == "__main__":
    asyncio.run(main())
