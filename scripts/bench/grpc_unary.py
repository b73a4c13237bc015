"""Benchmark: authenticated GetUser over gRPC against the single-process server.

Starts `keiko serve --service identity` in a subprocess (so the load generator never
shares its event loop), signs a user up through the real WebAuthn ceremony, then fires
GetUser at concurrency 1, 16 and 64 on SQLite and on PostgreSQL. The baseline, in the
same run and at the same concurrency, is grpc.health.v1 Check: same transport and
interceptors, no token verification, no database; the ratio is GetUser's cost over it.

    .venv/bin/python scripts/bench/grpc_unary.py [--requests 2000] [--engines sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from keiko.authenticator import SoftwareAuthenticator  # noqa: E402
from scripts.bench.stack import PURE_CODEC, uptime  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.api.keiko.identity import v1 as pb  # noqa: E402
from services.kit.grpc.client import stub  # noqa: E402

ORIGIN = "http://localhost:8000"


@dataclass
class Result:
    engine: str
    call: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def qps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_load(
    call: Callable[[], Awaitable[object]], concurrency: int, requests: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    for _ in range(min(50, requests)):  # warm-up: connections, caches, JIT-less paths
        await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def start_server(
    env: dict[str, str], port: int, pure_codec: bool = False
) -> subprocess.Popen[bytes]:
    keiko = [sys.executable, *(["-c", PURE_CODEC] if pure_codec else ["-m", "keiko"])]
    if "postgresql" in env["KEIKO_DATABASE_URL"]:
        subprocess.run(
            [*keiko, "migrate", "--service", "identity"], env=env, check=True, capture_output=True
        )
    process = subprocess.Popen(
        [*keiko, "serve", "--service", "identity"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            raise RuntimeError("keiko serve exited during start-up")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("keiko serve did not start in 60 s")


async def sign_up(channel: grpc.aio.Channel) -> tuple[str, str]:
    identity = stub(pb.IdentityServiceStub, channel)
    authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
    begun = await identity.begin_registration(
        pb.BeginRegistrationRequest(email="bench@example.org", display_name="Bench")
    )
    done = await identity.finish_registration(
        pb.FinishRegistrationRequest(
            registration_id=begun.registration_id,
            credential_json=authenticator.create(begun.options_json),
        )
    )
    return done.user.id, done.tokens.access_token


async def bench_engine(
    engine: str, requests: int, levels: list[int], pure_codec: bool = False
) -> list[Result]:
    database: AbstractAsyncContextManager[str] = (
        throwaway_postgres() if engine == "postgres" else nullcontext("")
    )
    async with database as database_url:
        port = free_port()
        with tempfile.TemporaryDirectory() as data_dir:
            env = {
                **os.environ,
                "KEIKO_DATA_DIR": data_dir,
                "KEIKO_DATABASE_URL": database_url,
                "KEIKO_GRPC_PORT": str(port),
                "KEIKO_LOG_LEVEL": "WARNING",
                "KEIKO_WEBAUTHN_ORIGINS": f'["{ORIGIN}"]',
                # Tokens must outlive the run.
                "KEIKO_ACCESS_TOKEN_TTL_SECONDS": "3600",
                # The proof-of-humanity decoder's compilation (~30 s of CPU in a thread at
                # start) is not what this measures, and it competes with the load.
                "KEIKO_HUMANITY_WARM_UP": "false",
            }
            server = start_server(env, port, pure_codec)
            results = []
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    user_id, token = await sign_up(channel)
                    identity = stub(pb.IdentityServiceStub, channel, access_token=token)
                    health = health_pb2_grpc.HealthStub(channel)
                    get_user = pb.GetUserRequest(user_id=user_id)
                    check = health_pb2.HealthCheckRequest(service="")
                    calls = {
                        "health.Check (baseline)": lambda: health.Check(check),
                        "GetUser (JWT + DB)": lambda: identity.get_user(get_user),
                    }
                    for concurrency in levels:
                        for name, call in calls.items():
                            seconds, latencies = await run_load(call, concurrency, requests)
                            results.append(
                                Result(engine, name, concurrency, requests, seconds, latencies)
                            )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=120)  # a loaded machine stops slowly
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        return results


def report(results: list[Result]) -> str:
    lines = [
        "| engine | call | concurrency | QPS | p50 ms | p95 ms | p99 ms | cost vs baseline |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = {(r.engine, r.concurrency): r.qps for r in results if r.call.endswith("(baseline)")}
    for r in results:
        ratio = baseline[(r.engine, r.concurrency)] / r.qps
        lines.append(
            f"| {r.engine} | {r.call} | {r.concurrency} | {r.qps:,.0f} | "
            f"{r.percentile(50):.2f} | {r.percentile(95):.2f} | {r.percentile(99):.2f} | "
            f"{ratio:.2f}x |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--pure-codec", action="store_true", help="betterproto's pure-Python codec (before)"
    )
    args = parser.parse_args()
    print(f"codec: {'pure Python' if args.pure_codec else 'as installed'}; {uptime()}")
    levels = [int(c) for c in args.concurrency.split(",")]
    results: list[Result] = []
    for engine in args.engines.split(","):
        results += await bench_engine(engine, args.requests, levels, args.pure_codec)
        print(report([r for r in results if r.engine == engine]), flush=True)
    print(report(results))
    mean_cpu = statistics.mean(os.getloadavg())
    print(f"\n{os.cpu_count()} cores, load average {mean_cpu:.1f} during the run; {uptime()}")


if __name__ == "__main__":
    asyncio.run(main())
