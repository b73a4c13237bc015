"""Benchmark: authenticated GetUser over gRPC against the identity server.

Starts `keiko serve --service identity` in a subprocess, signs a user up through the
real WebAuthn ceremony, then fires GetUser at each concurrency on SQLite and on
PostgreSQL. The load comes from several client processes sending request bytes
serialized once (scripts/bench/grpc_load.py), so the load generator costs little of the
machine beside the server. The baseline, in the same run and at the same concurrency, is
grpc.health.v1 Check: same transport and interceptors, no token verification, no
database; "cost vs baseline" is its QPS over GetUser's. Each row also gives the server
process's CPU per call (the steadier figure on a shared machine), the client processes'
CPU per call (what the load generator takes from the same cores) and the load average.

    .venv/bin/python scripts/bench/grpc_unary.py [--requests 2000] [--engines sqlite,postgres]
        [--concurrency 1,16,64] [--clients 2] [--workers 1] [--profile /tmp/getuser]

`--workers N` (N > 1, PostgreSQL only: SQLite cannot be shared by workers) runs
`keiko serve --workers N` with a private redis-server for its event bus; the server CPU
is then the supervisor's and all its workers'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from keiko.authenticator import SoftwareAuthenticator  # noqa: E402
from scripts.bench.grpc_load import (  # noqa: E402
    UnaryCall,
    percentile,
    process_tree_cpu_seconds,
    run_load,
)
from scripts.bench.stack import PURE_CODEC, profiled, uptime  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.api.keiko.identity import v1 as pb  # noqa: E402
from services.kit.grpc.client import stub  # noqa: E402

ORIGIN = "http://localhost:8000"
BASELINE = "health.Check (baseline)"
GET_USER = "GetUser (JWT + session + DB)"


@dataclass
class Result:
    engine: str
    call: str
    concurrency: int
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float
    client_cpu_seconds: float
    load: float

    @property
    def qps(self) -> float:
        return (self.calls - self.errors) / self.seconds

    @property
    def cpu_ms_per_call(self) -> float:
        return self.server_cpu_seconds * 1000 / self.calls

    @property
    def client_cpu_ms_per_call(self) -> float:
        return self.client_cpu_seconds * 1000 / self.calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    env: dict[str, str], port: int, pure_codec: bool = False, workers: int = 1
) -> subprocess.Popen[bytes]:
    keiko = [sys.executable, *(["-c", PURE_CODEC] if pure_codec else ["-m", "keiko"])]
    if "postgresql" in env["KEIKO_DATABASE_URL"]:
        subprocess.run(
            [*keiko, "migrate", "--service", "identity"], env=env, check=True, capture_output=True
        )
    process = subprocess.Popen(
        # --workers only when asked: a checkout from before it existed runs too.
        [*keiko, "serve", "--service", "identity", *(["--workers", str(workers)] * (workers > 1))],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, "keiko serve")
    return process


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not start in 60 s")


def start_redis(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A private redis-server (no persistence) for the workers' event bus, in `env`."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    redis = subprocess.Popen([*argv, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for_port(port, redis, "redis-server")
    env["KEIKO_EVENT_BUS_URL"] = f"redis://127.0.0.1:{port}/0"
    return redis


async def sign_up(target: str) -> tuple[str, str]:
    async with grpc.aio.insecure_channel(target) as channel:
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


def calls_for(user_id: str, token: str) -> dict[str, UnaryCall]:
    return {
        BASELINE: UnaryCall(
            "/grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest(service="").SerializeToString(),
        ),
        GET_USER: UnaryCall(
            "/keiko.identity.v1.IdentityService/GetUser",
            bytes(pb.GetUserRequest(user_id=user_id)),
            (("authorization", f"Bearer {token}"),),
        ),
    }


async def bench_engine(engine: str, args: argparse.Namespace) -> list[Result]:
    database: AbstractAsyncContextManager[str] = (
        throwaway_postgres() if engine == "postgres" else nullcontext("")
    )
    levels = [int(c) for c in args.concurrency.split(",")]
    async with database as database_url:
        port = free_port()
        target = f"127.0.0.1:{port}"
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
            redis = start_redis(env) if args.workers > 1 else None
            server = start_server(env, port, args.pure_codec, args.workers)
            results = []
            try:
                user_id, token = await sign_up(target)
                for concurrency in levels:
                    for name, call in calls_for(user_id, token).items():
                        profile = None
                        if args.profile and name == GET_USER:
                            profile = Path(f"{args.profile}-{engine}-c{concurrency}.txt")
                        async with profiled(server.pid, profile):
                            load = await asyncio.to_thread(
                                run_load,
                                target,
                                call,
                                requests=args.requests,
                                concurrency=concurrency,
                                processes=args.clients,
                                server_cpu=lambda: process_tree_cpu_seconds(server.pid),
                            )
                        if load.errors:
                            first = next(r.first_error for r in load.runs if r.errors)
                            print(f"{engine} {name} c{concurrency}: {load.errors} errors, {first}")
                        results.append(
                            Result(
                                engine,
                                name,
                                concurrency,
                                load.calls,
                                load.errors,
                                load.seconds,
                                load.latencies_ms,
                                load.server_cpu_seconds,
                                load.client_cpu_seconds,
                                os.getloadavg()[0],
                            )
                        )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=120)  # a loaded machine stops slowly
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
                if redis is not None:
                    redis.terminate()
                    redis.wait()
        return results


def report(results: list[Result]) -> str:
    lines = [
        "| engine | call | concurrency | QPS | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU a call | client CPU a call | cost vs baseline | load (1 min) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = {(r.engine, r.concurrency): r.qps for r in results if r.call == BASELINE}
    for r in results:
        ratio = baseline[(r.engine, r.concurrency)] / r.qps if r.qps else float("inf")
        p = r.latencies_ms
        lines.append(
            f"| {r.engine} | {r.call} | {r.concurrency} | {r.qps:,.0f} | "
            f"{percentile(p, 50):.2f} | {percentile(p, 95):.2f} | {percentile(p, 99):.2f} | "
            f"{r.errors} | {r.cpu_ms_per_call:.3f} ms | {r.client_cpu_ms_per_call:.3f} ms | "
            f"{ratio:.2f}x | {r.load:.1f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--clients", type=int, default=2, help="client processes sharing the concurrency"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="keiko serve --workers (PostgreSQL only)"
    )
    parser.add_argument(
        "--pure-codec", action="store_true", help="betterproto's pure-Python codec (before)"
    )
    parser.add_argument(
        "--profile", default="", help="py-spy the server under GetUser: PREFIX-engine-cN.txt"
    )
    args = parser.parse_args()
    print(
        f"codec: {'pure Python' if args.pure_codec else 'as installed'}; "
        f"{args.clients} client processes; {args.workers} server worker(s); "
        f"{os.cpu_count()} cores; {uptime()}",
        flush=True,
    )
    engines = args.engines.split(",")
    if args.workers > 1 and "sqlite" in engines:
        if shutil.which("redis-server") is None:
            parser.error("--workers needs redis-server (Debian package redis-server)")
        print("sqlite skipped: more than one worker needs PostgreSQL", flush=True)
        engines.remove("sqlite")
    elif args.workers > 1 and shutil.which("redis-server") is None:
        parser.error("--workers needs redis-server (Debian package redis-server)")
    results: list[Result] = []
    for engine in engines:
        results += await bench_engine(engine, args)
        print(report([r for r in results if r.engine == engine]), flush=True)
    print()
    print(report(results))
    print(f"\n{uptime()}")


if __name__ == "__main__":
    asyncio.run(main())
