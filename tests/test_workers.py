"""`keiko serve --workers 2` as processes (PostgreSQL + Redis: a throwaway database and a
private redis-server). Both workers answer on the same HTTP port (each names its pid in
/metrics); an interaction recorded through one is anchored once and read through the
other; SIGTERM stops the supervisor, both workers and the embedded chain node. Then, on
shorter runs without a chain: a worker that dies stops the platform with a log line, and
SIGKILLing the supervisor takes its workers with it. The embedded engine refuses more
than one worker, but not for the gateway alone (`--gateway-only`, no state), whose two
workers both answer on its port. Waits are bounded; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from chain.node.process import free_port
from chain.translator.storage import ANCHORED, records
from keiko.workers import reuse_port_socket
from services.kit.db import Database
from tests.e2e_support import (
    GraphQLClient,
    all_interactions,
    record_interactions,
    sign_up_and_log_in,
)
from tests.replica_rig import base_env, need_engines, redis_process, wait_for_port
from tests.test_cli_serve import ROOT, wait_for_banner
from tests.test_process_hygiene import children, gone, wait_until_gone
from tests.test_replicas import until

pytestmark = [pytest.mark.engines, pytest.mark.timeout(900)]

WORKER_PID = re.compile(r'keiko_worker_info\{[^}]*pid="(\d+)"')
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the console log's colours
BANNER_PIDS = re.compile(r"workers\s+2 processes \(pids (\d+), (\d+)\)")


def serve(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[str]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "keiko", "serve", "--workers", "2", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def worker_pids(banner: list[str]) -> list[int]:
    found = BANNER_PIDS.search("\n".join(banner))
    assert found, banner
    return [int(found[1]), int(found[2])]


async def worker_of(http: httpx.AsyncClient) -> int:
    """The pid of the worker this client's one connection reaches."""
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    found = WORKER_PID.search(metrics.text)
    assert found, "no keiko_worker_info in /metrics"
    return int(found[1])


@asynccontextmanager
async def connected_to(url: str, pid: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose one keep-alive connection reaches worker `pid` (new connections
    until the kernel hands one to it; it spreads them by address and port)."""
    for _ in range(200):
        http = httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1))
        if await worker_of(http) == pid:
            try:
                yield http
            finally:
                await http.aclose()
            return
        await http.aclose()
    pytest.fail(f"200 connections and none reached worker {pid}")


def engine_env(tmp_path: Path, database_url: str, redis_port: int) -> dict[str, str]:
    """The replicas' environment (tests/replica_rig.py), but the supervisor starts the
    embedded chain node and makes the JWT signing key in the data dir."""
    env = base_env(tmp_path, database_url, redis_port, node_port=0)
    env.pop("KEIKO_JWT_PRIVATE_KEY_FILE")
    env.update(
        {
            "KEIKO_CHAIN_RPC_URL": "",
            "KEIKO_CHAIN_NODE_PORT": str(free_port()),
            "KEIKO_GRPC_PORT": str(free_port()),
            "KEIKO_HTTP_PORT": str(free_port()),
        }
    )
    return env


def stop_all(process: subprocess.Popen[str], pids: list[int]) -> None:
    """Whatever happened: nothing of this test keeps running."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


async def test_two_workers_share_the_ports_the_work_and_the_stop(
    tmp_path: Path, database_url: str
) -> None:
    need_engines()
    redis_port = free_port()
    redis = redis_process(tmp_path, redis_port)
    redis.start()
    try:
        wait_for_port(redis_port, "redis-server")
        env = engine_env(tmp_path, database_url, redis_port)
        migrated = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "keiko", "migrate"],
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stderr[-4000:]
        await _serve_record_and_stop(tmp_path, env, database_url)
        _a_dying_worker_stops_the_platform(tmp_path, env)
        _no_worker_outlives_a_killed_supervisor(tmp_path, env)
    finally:
        redis.stop()


async def _serve_record_and_stop(tmp_path: Path, env: dict[str, str], database_url: str) -> None:
    process = serve(env, log=tmp_path / "serve.log")
    pids: list[int] = []
    try:
        pids = worker_pids(wait_for_banner(process, timeout=400))
        [node] = [pid for pid, cmd in children(process.pid) if "chain.node" in cmd]
        pids.append(node)
        assert {pid for pid, _ in children(process.pid)} == set(pids)
        url = f"http://127.0.0.1:{env['KEIKO_HTTP_PORT']}"
        first, second = pids[0], pids[1]

        async with connected_to(url, first) as http:
            gql = GraphQLClient(http)
            await sign_up_and_log_in(gql, "ana@workers.example", "Ana")
            [statement] = await record_interactions(gql, 1, label="workers")
            assert await worker_of(http) == first  # the same connection all along
            token = gql.token

        async def anchored_through_second() -> bool:
            async with connected_to(url, second) as http:
                gql = GraphQLClient(http)
                gql.token = token
                nodes = {n["id"]: n for n in await all_interactions(gql)}
            return statement in nodes and nodes[statement]["anchor"]["status"] == "ANCHORED"

        await until(anchored_through_second, "the interaction anchored, read via worker 2")
        db = Database(database_url, schemas=["chain"])
        try:
            async with db.session() as session:
                rows = (
                    await session.execute(
                        select(records.c.status).where(records.c.record_id == statement)
                    )
                ).all()
        finally:
            await db.dispose()
        assert [r.status for r in rows] == [ANCHORED]  # one translator record, anchored

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
        for pid in pids:
            assert wait_until_gone(pid), f"process {pid} outlived the supervisor's SIGTERM"
    finally:
        stop_all(process, pids)


def _a_dying_worker_stops_the_platform(tmp_path: Path, env: dict[str, str]) -> None:
    log = tmp_path / "dying.log"
    process = serve(env, "--no-chain", log=log)
    pids: list[int] = []
    try:
        pids = worker_pids(wait_for_banner(process, timeout=300))
        os.kill(pids[0], signal.SIGKILL)
        assert process.wait(timeout=120) == 1
        assert wait_until_gone(pids[1])
        text = ANSI.sub("", log.read_text())
        assert "a worker exited: stopping the platform" in text, text[-3000:]
        assert f"pid={pids[0]}" in text, text[-3000:]
    finally:
        stop_all(process, pids)


def _no_worker_outlives_a_killed_supervisor(tmp_path: Path, env: dict[str, str]) -> None:
    process = serve(env, "--no-chain", log=tmp_path / "killed.log")
    pids: list[int] = []
    try:
        pids = worker_pids(wait_for_banner(process, timeout=300))
        process.kill()  # SIGKILL: the supervisor cleans up nothing
        process.wait(timeout=30)
        for pid in pids:
            assert wait_until_gone(pid), f"worker {pid} outlived its SIGKILLed supervisor"
    finally:
        stop_all(process, pids)


def test_the_embedded_engine_refuses_several_workers(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KEIKO_DATA_DIR": str(tmp_path / "data"),
        "KEIKO_DATABASE_URL": "",
        "KEIKO_EVENT_BUS_URL": "memory://",
        "KEIKO_GRPC_PORT": str(free_port()),
        "KEIKO_HTTP_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "keiko", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "keiko: cannot start: --workers 2 needs PostgreSQL" in done.stderr
    assert "in-process event bus" in done.stderr
    assert "Keiko is running" not in done.stdout
    assert "Traceback" not in done.stderr


def test_workers_must_be_a_whole_number_or_auto() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "keiko", "serve", "--workers", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "workers must be >= 1 or auto, not 0" in done.stderr


async def test_a_workers_http_socket_answers_without_nagle_delays() -> None:
    """A worker's shared HTTP socket hands asyncio connections it sets TCP_NODELAY on
    (otherwise every keep-alive response waits out the client's delayed ACK), and a
    second socket binds the same port (SO_REUSEPORT)."""
    sock = reuse_port_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            raw = transport.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 30) != 0
        writer.close()
        # Bound (and listening) beside the first: opened after the connection above, which
        # the kernel could otherwise have handed to this one, where nobody accepts.
        reuse_port_socket("127.0.0.1", port).close()
    finally:
        server.close()
        await server.wait_closed()


def test_gateway_only_workers_share_the_http_port(tmp_path: Path) -> None:
    """The gateway alone keeps no state, so its workers need no shared engine: both answer
    on the one port (new connections until each has been seen), SIGTERM stops them."""
    port = free_port()
    env = {**os.environ, "KEIKO_DATA_DIR": str(tmp_path / "data"), "KEIKO_HTTP_PORT": str(port)}
    process = serve(env, "--gateway-only", log=tmp_path / "gateway.log")
    pids: list[int] = []
    try:
        pids = worker_pids(wait_for_banner(process, timeout=300))
        seen: set[int] = set()
        for _ in range(200):
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            found = WORKER_PID.search(metrics.text)
            assert found, metrics.text[:2000]
            seen.add(int(found[1]))
            if seen == set(pids):
                break
        assert seen == set(pids)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
        for pid in pids:
            assert wait_until_gone(pid)
    finally:
        stop_all(process, pids)
