"""`keiko serve --workers N`: several worker processes on the same public ports.

The supervisor (the `keiko serve` process) checks the ports, makes the JWT signing key
once, starts the embedded chain node once, then starts N workers. Each worker is a whole
`keiko serve` (the gateway and the services, or whichever `--service` / `--gateway-only`
shape was asked for) listening on the same HTTP and gRPC ports with SO_REUSEPORT, so the
kernel spreads connections among them, plus a loopback port of its own where its gateway
and its services call each other (no hop to another worker for a local call).

Workers share nothing in memory: they need PostgreSQL and Redis, whose replica-safety
the replicas test proves (docs/operations.md#replicas); the embedded engine (SQLite and
the in-process event bus) is refused. The supervisor forwards SIGINT/SIGTERM to every
worker; a worker that exits on its own stops the platform (logged, exit code 1): restarts
are the service manager's job (systemd, Kubernetes), never silent. Workers watch a
lifeline pipe to the supervisor, so none outlives it, even a SIGKILLed one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from chain.node.process import LIFELINE_ENV
from keiko.settings import Settings
from services.kit.errors import FailedPrecondition

log = structlog.get_logger("keiko.workers")

SLOT_ENV = "KEIKO_WORKER_SLOT"  # internal: what the supervisor tells a worker (JSON)
READY_TIMEOUT_SECONDS = 300.0
# Past the workers' own grace period (KEIKO_SHUTDOWN_GRACE_SECONDS), a worker still
# running is killed.
STOP_MARGIN_SECONDS = 15.0


@dataclass(frozen=True)
class WorkerSlot:
    """One worker's place: its number (1..count), its own loopback gRPC port, and the
    pipe it writes its banner to once it serves (end of file without one: it failed)."""

    index: int
    count: int
    local_grpc_port: int
    ready_fd: int

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSlot | None:
        text = environ.get(SLOT_ENV, "")
        return cls(**json.loads(text)) if text else None

    def report_ready(self, banner: str) -> None:
        with os.fdopen(self.ready_fd, "w") as pipe:
            pipe.write(banner)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port that other workers may bind too (SO_REUSEPORT):
    the kernel spreads new connections among them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it a keep-alive response waits out the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def refuse_embedded_engines(settings: Settings, count: int) -> None:
    """Workers share state only through PostgreSQL and Redis."""
    if settings.embedded_database or settings.event_bus_url.startswith("memory:"):
        raise FailedPrecondition(
            f"--workers {count} needs PostgreSQL (KEIKO_DATABASE_URL) and Redis "
            "(KEIKO_EVENT_BUS_URL): worker processes cannot share the embedded SQLite "
            "database nor the in-process event bus. Run one worker (the default) on the "
            "embedded engine"
        )


def distinct_loopback_ports(count: int) -> list[int]:
    """``count`` free loopback ports, all different (held together while picked)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


@dataclass
class Worker:
    slot: WorkerSlot
    process: asyncio.subprocess.Process
    ready_read: int

    @property
    def pid(self) -> int:
        return self.process.pid


async def start_worker(
    slot_index: int,
    count: int,
    local_port: int,
    worker_args: list[str],
    env: dict[str, str],
    lifeline_read: int,
) -> Worker:
    ready_read, ready_write = os.pipe()
    slot = WorkerSlot(slot_index, count, local_port, ready_write)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "keiko",
            "serve",
            *worker_args,
            env={**env, SLOT_ENV: slot.to_env(), LIFELINE_ENV: str(lifeline_read)},
            pass_fds=(lifeline_read, ready_write),
            # Its own process group: a terminal's Ctrl-C reaches the supervisor, which
            # forwards it, so no worker sees a signal the others do not.
            process_group=0,
        )
    finally:
        os.close(ready_write)
    return Worker(slot, process, ready_read)


def _read_all(fd: int) -> str:
    with os.fdopen(fd, "r") as pipe:
        return pipe.read()


async def wait_ready(worker: Worker) -> str:
    """The worker's banner once it serves; FailedPrecondition if it exits first."""
    reading = asyncio.ensure_future(asyncio.to_thread(_read_all, worker.ready_read))
    exited = asyncio.ensure_future(worker.process.wait())
    done, _ = await asyncio.wait(
        {reading, exited}, timeout=READY_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
    )
    if reading in done and reading.result():
        exited.cancel()
        return str(reading.result())
    if exited not in done:
        await asyncio.wait({exited}, timeout=5)
    exited.cancel()
    code = worker.process.returncode
    raise FailedPrecondition(
        f"worker {worker.slot.index} (pid {worker.pid}) "
        + ("did not start in time" if code is None else f"exited with code {code} at start")
    )


def supervisor_banner(first_worker_banner: str, workers: list[Worker]) -> str:
    pids = ", ".join(str(w.pid) for w in workers)
    lines = first_worker_banner.rstrip("\n").splitlines()
    lines.insert(1, f"  workers   {len(workers)} processes (pids {pids}) on the same ports")
    return "\n".join(lines)


async def stop_workers(workers: list[Worker], sig: int, grace: float) -> None:
    """Send `sig` to every running worker; kill those still running after the grace."""
    running = [w for w in workers if w.process.returncode is None]
    for worker in running:
        worker.process.send_signal(sig)
    if not running:
        return
    _, pending = await asyncio.wait(
        {asyncio.ensure_future(w.process.wait()) for w in running},
        timeout=grace + STOP_MARGIN_SECONDS,
    )
    for worker in running:
        if worker.process.returncode is None:
            log.error("worker did not stop in time: killed", worker=worker.slot.index)
            worker.process.kill()
            await worker.process.wait()
    for task in pending:
        task.cancel()


async def supervise(
    settings: Settings,
    count: int,
    worker_args: list[str],
    *,
    with_chain: bool,
    hosts_identity: bool,
    with_grpc: bool,
    with_gateway: bool,
) -> int:
    """Run `count` workers until SIGINT/SIGTERM (exit code 0) or until one exits on its
    own (exit code 1). Settings are the supervisor's, with concrete ports."""
    from keiko.platform import (
        embedded_chain_node,
        jwt_keys,
        refuse_ports_in_use,
        with_concrete_ports,
    )

    if with_grpc:  # the gateway alone keeps no state: its workers need no shared engine
        refuse_embedded_engines(settings, count)
    settings = with_concrete_ports(settings)
    refuse_ports_in_use(settings, with_gateway=with_gateway, with_grpc=with_grpc)
    if with_grpc:
        jwt_keys(settings, hosts_identity)  # made once here, not raced by the workers

    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(sig: int) -> None:
        received.append(sig)
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    env = {
        **os.environ,
        "KEIKO_GRPC_PORT": str(settings.grpc_port),
        "KEIKO_HTTP_PORT": str(settings.http_port),
        "KEIKO_WORKERS": "1",
    }
    workers: list[Worker] = []
    async with AsyncExitStack() as stack:
        if with_chain and not settings.chain_rpc_url:
            node_url = await stack.enter_async_context(embedded_chain_node(settings))
            env["KEIKO_CHAIN_RPC_URL"] = node_url
        lifeline_read, lifeline_write = os.pipe()
        stack.callback(os.close, lifeline_write)  # closed last: every worker then stops
        try:
            for index, port in enumerate(distinct_loopback_ports(count), start=1):
                workers.append(
                    await start_worker(index, count, port, worker_args, env, lifeline_read)
                )
        finally:
            os.close(lifeline_read)
        stack.push_async_callback(
            stop_workers, workers, signal.SIGTERM, settings.shutdown_grace_seconds
        )
        banners = await _ready_or_stop(workers, stop)
        if banners is None:
            return 0
        print(supervisor_banner(banners[0], workers), file=sys.stdout, flush=True)
        return await _watch(workers, stop, received, settings.shutdown_grace_seconds)
    return 0  # not reached: the block returns or raises


async def _ready_or_stop(workers: list[Worker], stop: asyncio.Event) -> list[str] | None:
    """Every worker's banner, or None when a signal came first."""
    starting = asyncio.ensure_future(asyncio.gather(*(wait_ready(w) for w in workers)))
    stopping = asyncio.ensure_future(stop.wait())
    either: list[asyncio.Future[Any]] = [starting, stopping]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        stopping.cancel()
        return list(starting.result())  # raises FailedPrecondition if one failed
    starting.cancel()
    await asyncio.gather(starting, return_exceptions=True)
    return None


async def _watch(
    workers: list[Worker], stop: asyncio.Event, received: list[int], grace: float
) -> int:
    exits = {asyncio.ensure_future(w.process.wait()): w for w in workers}
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({*exits, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in exits:
        task.cancel()
    if stopping in done:
        sig = received[0] if received else signal.SIGTERM
        log.info("stopping workers", signal=signal.Signals(sig).name)
        await stop_workers(workers, sig, grace)
        return 0
    stopping.cancel()
    dead = next(exits[task] for task in done if task in exits)
    log.error(
        "a worker exited: stopping the platform (no restart; the service manager decides)",
        worker=dead.slot.index,
        pid=dead.pid,
        exit_code=dead.process.returncode,
    )
    await stop_workers(workers, signal.SIGTERM, grace)
    return 1
