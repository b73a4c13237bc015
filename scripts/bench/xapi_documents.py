"""Benchmark: the xAPI State resource through the gateway (PUT and GET, Basic auth).

Starts `keiko serve` in a subprocess (the whole platform as shipped: gateway, gRPC
services, embedded chain node; the load generator never shares its event loop), signs a
user up over GraphQL with a software passkey, registers an LRS client
(`registerLrsClient`) and then, at ``--concurrency`` (16), sends ``--requests`` requests
of each kind to ``/xapi/activities/state`` with HTTP Basic auth and
``X-Experience-API-Version: 1.0.3``:

* ``PUT state``: each worker replaces its own document (stateId ``w<n>``) with a ~1 KiB
  JSON body: gateway, Basic-auth check in learning, the row locked, preconditions, the
  compare-and-set write and the owner's usage row, one transaction;
* ``GET state``: the same documents back, with ETag and Last-Modified.

Two baselines in the same run, at the same concurrency:

* ``GET /xapi/about``: the same HTTP stack (uvicorn, Starlette, httpx client) without
  credentials, gRPC or database: the floor of any xAPI request;
* ``raw upsert``: the same document written straight into ``learning.documents`` by this
  process (one ``INSERT ... ON CONFLICT DO UPDATE`` per request on its own connection
  pool), with no HTTP, no gRPC, no auth, no lock and no quota row: the database's floor.

Engines: SQLite (the embedded default, a file in a temp data dir) and PostgreSQL (a fresh
database created and dropped by the script; in-process event bus on both).

    .venv/bin/python scripts/bench/xapi_documents.py [--requests 2000] [--concurrency 16] \
        [--engines sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.dialects import postgresql, sqlite

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from keiko.gateway_client import GatewayClient, new_authenticator  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.kit.db import Database  # noqa: E402
from services.learning.documents.domain import (  # noqa: E402
    DocumentKey,
    DocumentKind,
    etag_of,
)
from services.learning.documents.storage import documents  # noqa: E402
from services.learning.xapi import agent_key  # noqa: E402

STATE = "/xapi/activities/state"
ACTIVITY = "https://lms.example/course/algebra/module/3"
AGENT = {"objectType": "Agent", "mbox": "mailto:learner@school.example"}
VERSION = {"X-Experience-API-Version": "1.0.3"}


@dataclass
class Result:
    engine: str
    call: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def document(worker: int, n: int) -> bytes:
    """A bookmark / suspend_data document of ~1 KiB, as authoring tools keep."""
    body = {
        "bookmark": f"slide-{n % 40}",
        "progress": round((n % 100) / 100, 2),
        "suspend_data": ("q1=a;q2=c;q3=b;" * 64)[: 900 + worker],
        "attempt": n,
    }
    return json.dumps(body).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_load(
    call: Callable[[int, int], Awaitable[int]], concurrency: int, requests: int
) -> tuple[float, list[float], dict[int, int]]:
    """`requests` calls of `call(worker, n)` by `concurrency` workers, after a warm-up."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def worker(w: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            n = remaining
            started = time.perf_counter()
            status = await call(w, n)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    for w in range(concurrency):  # warm-up: connections, each worker's first write
        await call(w, -1)
    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def start_server(env: dict[str, str], http_port: int) -> subprocess.Popen[bytes]:
    keiko = [sys.executable, "-m", "keiko"]
    if "postgresql" in env["KEIKO_DATABASE_URL"]:
        subprocess.run([*keiko, "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    process = subprocess.Popen(
        [*keiko, "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("keiko serve exited during start-up")
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("keiko serve was not ready in 180 s")


def lrs_credentials(gateway: str) -> tuple[str, str, str]:
    """A new user (software passkey) and an LRS client of theirs: (owner id, key, secret)."""
    with GatewayClient(gateway) as client:
        session = client.sign_up(
            "bench@school.example", "Bench", new_authenticator(gateway, "localhost")
        )
        made = client.call("RegisterLrsClient", name="bench LMS", requestId="")
        registered = made["registerLrsClient"]
        return str(session.user["id"]), registered["client"]["key"], registered["secret"]


async def raw_upsert_load(
    database_url: str, owner_id: str, concurrency: int, requests: int
) -> tuple[float, list[float], dict[int, int]]:
    database = Database(database_url, schemas=["learning"])
    dialect: Any = postgresql if database_url.startswith("postgresql") else sqlite

    async def upsert(worker: int, n: int) -> int:
        content = document(worker, n)
        key = DocumentKey(
            owner_id=owner_id,
            kind=DocumentKind.STATE,
            activity_id=ACTIVITY,
            agent_key=agent_key(AGENT) or "",
            document_id=f"raw{worker}",
        )
        values = {
            "owner_id": owner_id,
            "context_hash": key.context_hash,
            "document_id": key.document_id,
            "kind": key.kind.value,
            "activity_id": key.activity_id,
            "agent_key": key.agent_key,
            "registration": "",
            "content": content,
            "content_type": "application/json",
            "etag": etag_of(content),
            "size": len(content),
            "updated": datetime.now(UTC),
        }
        stmt = dialect.insert(documents).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["owner_id", "context_hash", "document_id"],
            set_={k: stmt.excluded[k] for k in ("content", "etag", "size", "updated")},
        )
        async with database.transaction() as s:
            await s.execute(stmt)
        return 204

    try:
        return await run_load(upsert, concurrency, requests)
    finally:
        await database.dispose()


async def bench_engine(engine: str, requests: int, concurrency: int) -> list[Result]:
    database: AbstractAsyncContextManager[str] = (
        throwaway_postgres() if engine == "postgres" else nullcontext("")
    )
    async with database as database_url:
        http_port, grpc_port, node_port = free_port(), free_port(), free_port()
        with tempfile.TemporaryDirectory() as data_dir:
            env = {
                **os.environ,
                "KEIKO_DATA_DIR": data_dir,
                "KEIKO_DATABASE_URL": database_url,
                "KEIKO_HTTP_PORT": str(http_port),
                "KEIKO_GRPC_PORT": str(grpc_port),
                "KEIKO_CHAIN_NODE_PORT": str(node_port),
                "KEIKO_EVENT_BUS_URL": "memory://",
                "KEIKO_HUMANITY_WARM_UP": "false",
                "KEIKO_LOG_LEVEL": "WARNING",
                "KEIKO_PUBLIC_BASE_URL": f"http://localhost:{http_port}",
            }
            if database_url:
                env["KEIKO_KEK"] = base64.b64encode(os.urandom(32)).decode()
            gateway = f"http://localhost:{http_port}"
            server = start_server(env, http_port)
            try:
                owner_id, key, secret = lrs_credentials(gateway)
                sqlite_url = f"sqlite+aiosqlite:///{Path(data_dir) / 'db' / 'keiko.db'}"
                return await _measure(
                    engine,
                    gateway,
                    httpx.BasicAuth(key, secret),
                    owner_id,
                    database_url or sqlite_url,
                    requests,
                    concurrency,
                )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()


async def _measure(
    engine: str,
    gateway: str,
    auth: httpx.BasicAuth,
    owner_id: str,
    database_url: str,
    requests: int,
    concurrency: int,
) -> list[Result]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    agent = json.dumps(AGENT)
    results = []
    async with httpx.AsyncClient(base_url=gateway, limits=limits, timeout=60) as http:

        def params(worker: int) -> dict[str, str]:
            return {"activityId": ACTIVITY, "agent": agent, "stateId": f"w{worker}"}

        async def about(worker: int, n: int) -> int:
            return (await http.get("/xapi/about")).status_code

        async def put(worker: int, n: int) -> int:
            reply = await http.put(
                STATE,
                params=params(worker),
                content=document(worker, n),
                headers={**VERSION, "Content-Type": "application/json"},
                auth=auth,
            )
            return reply.status_code

        async def get(worker: int, n: int) -> int:
            reply = await http.get(STATE, params=params(worker), headers=VERSION, auth=auth)
            return reply.status_code

        calls: list[tuple[str, Callable[[int, int], Awaitable[int]]]] = [
            ("GET /xapi/about (HTTP baseline)", about),
            ("PUT state", put),
            ("GET state", get),
        ]
        for name, call in calls:
            seconds, latencies, statuses = await run_load(call, concurrency, requests)
            results.append(Result(engine, name, requests, seconds, latencies, statuses))
            print(f"  {engine}: {name} done", file=sys.stderr)
    seconds, latencies, statuses = await raw_upsert_load(
        database_url, owner_id, concurrency, requests
    )
    results.append(
        Result(engine, "raw upsert (DB baseline)", requests, seconds, latencies, statuses)
    )
    return results


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args()
    before = load_average()
    started = datetime.now(UTC)
    results: list[Result] = []
    for engine in args.engines.split(","):
        results += asyncio.run(bench_engine(engine, args.requests, args.concurrency))
    print(
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {platform.python_version()}, "
        f"load average before {before}, after {load_average()}; concurrency "
        f"{args.concurrency}, {args.requests} requests per row"
    )
    print()
    print("| engine | call | req/s | p50 ms | p95 ms | p99 ms | statuses |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in results:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        print(
            f"| {r.engine} | {r.call} | {r.rps:,.0f} | {r.percentile(50):.2f} | "
            f"{r.percentile(95):.2f} | {r.percentile(99):.2f} | {statuses} |"
        )


if __name__ == "__main__":
    main()
