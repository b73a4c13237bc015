"""A light closed-loop gRPC load generator: several client processes, each with its own
grpc.aio channel, sending request bytes serialized once (no message classes, no
interceptors, no per-call encoding in the client), so the client takes as little of the
machine's CPU as the server it measures.

Used by scripts/bench/grpc_unary.py; any unary method, any metadata.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

import grpc

WARM_UP = 20  # calls per client process before the clock starts (connection, caches)


@dataclass(frozen=True)
class UnaryCall:
    """One unary method with its request already serialized."""

    method: str  # full name: "/package.Service/Method"
    request: bytes
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ClientRun:
    """What one client process measured: its latencies (ms), failed calls, the first
    failure's text, when its load started and ended (time.perf_counter, which is
    CLOCK_MONOTONIC on Linux: comparable across processes) and the CPU it used meanwhile
    (seconds, all its threads)."""

    latencies_ms: list[float]
    errors: int
    first_error: str
    started: float
    ended: float
    cpu_seconds: float


@dataclass(frozen=True)
class LoadResult:
    runs: list[ClientRun]
    server_cpu_seconds: float

    @property
    def latencies_ms(self) -> list[float]:
        return [latency for run in self.runs for latency in run.latencies_ms]

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def seconds(self) -> float:
        return max(r.ended for r in self.runs) - min(r.started for r in self.runs)

    @property
    def client_cpu_seconds(self) -> float:
        return sum(run.cpu_seconds for run in self.runs)

    @property
    def calls(self) -> int:
        return sum(len(run.latencies_ms) for run in self.runs)


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares (the first ones one larger)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def _client_load(
    target: str, call: UnaryCall, requests: int, concurrency: int, barrier: Barrier
) -> ClientRun:
    async with grpc.aio.insecure_channel(target) as channel:
        # No serializers: the request goes out as the bytes given, the reply stays bytes.
        send = channel.unary_unary(call.method)
        metadata = call.metadata
        for _ in range(WARM_UP):
            await send(call.request, metadata=metadata)
        barrier.wait()  # every process warmed up: the clock starts for all at once
        latencies: list[float] = []
        errors = 0
        first_error = ""
        remaining = requests
        clock = time.perf_counter

        async def worker() -> None:
            nonlocal remaining, errors, first_error
            while remaining > 0:
                remaining -= 1
                started = clock()
                try:
                    await send(call.request, metadata=metadata)
                except grpc.aio.AioRpcError as error:
                    errors += 1
                    first_error = first_error or f"{error.code().name}: {error.details()}"
                latencies.append((clock() - started) * 1000)

        cpu, started = time.process_time(), clock()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        ended = clock()
        return ClientRun(latencies, errors, first_error, started, ended, time.process_time() - cpu)


def _client_main(
    target: str,
    call: UnaryCall,
    requests: int,
    concurrency: int,
    barrier: Barrier,
    results: multiprocessing.SimpleQueue,  # type: ignore[type-arg]
) -> None:
    try:
        results.put(asyncio.run(_client_load(target, call, requests, concurrency, barrier)))
    except BaseException as error:  # the parent must not wait forever for this process
        barrier.abort()
        results.put(error)
        raise


def run_load(
    target: str,
    call: UnaryCall,
    *,
    requests: int,
    concurrency: int,
    processes: int,
    server_cpu: Callable[[], float],
) -> LoadResult:
    """`requests` calls of `call` by `concurrency` concurrent callers spread over
    `processes` client processes; the server's CPU (`server_cpu()`, seconds) is read
    right before the clients are released and after the last one finished."""
    processes = max(1, min(processes, concurrency))
    context = multiprocessing.get_context("spawn")  # no grpc state inherited by fork
    barrier = context.Barrier(processes + 1)
    results = context.SimpleQueue()
    shares = zip(split(requests, processes), split(concurrency, processes), strict=True)
    clients = [
        context.Process(
            target=_client_main, args=(target, call, n, c, barrier, results), daemon=True
        )
        for n, c in shares
    ]
    for client in clients:
        client.start()
    try:
        barrier.wait(timeout=120)
        cpu_before = server_cpu()
        runs: list[ClientRun] = []
        for _ in clients:
            result = results.get()
            if isinstance(result, BaseException):
                raise RuntimeError(f"a client process failed: {result!r}")
            runs.append(result)
        cpu_after = server_cpu()
    finally:
        for client in clients:
            client.join(timeout=10)
            if client.is_alive():
                client.kill()
    return LoadResult(runs, cpu_after - cpu_before)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` (Linux /proc)."""
    return _stat_cpu(_stat_fields(pid))


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` and of every process below it (a supervisor and
    its workers), as they are now."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except OSError:  # it ended meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = _stat_cpu(fields)
    tree = {pid}
    grew = True
    while grew:
        below = {child for child, parent in parents.items() if parent in tree} - tree
        grew = bool(below)
        tree |= below
    return sum(cpu.get(member, 0.0) for member in tree)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, ... (field 3 onwards)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _stat_cpu(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
