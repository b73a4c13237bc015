"""Runs Keiko: any set of services on one gRPC port, optionally the GraphQL gateway,
and on the embedded default the Keikochain dev node in its own process.

Start-up order: keys → chain node → database (+ migrations on the embedded default) →
event bus → gRPC host → gateway. Shutdown runs it backwards, turning health
NOT_SERVING first so load balancers drain before connections close.

With ``--workers N`` (keiko/workers.py) this runs once per worker process, given a
``WorkerSlot``: the ports are shared with the other workers (SO_REUSEPORT), and the
gateway and the services call each other at the worker's own loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import structlog
from prometheus_client import Info

from chain.node.process import port_in_use
from gateway.server import running_gateway
from keiko.registry import ServiceDefinition
from keiko.runtime import ServiceRuntime
from keiko.settings import ALL_SERVICES, Settings
from keiko.workers import WorkerSlot, reuse_port_socket
from services.api import DESCRIPTOR_SET_PATH
from services.kit.auth import TokenVerifier, load_or_create_signing_key, public_key_pem
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.events import event_bus_from_url
from services.kit.events.fanout import EventFanout
from services.kit.grpc import adapter
from services.kit.grpc.server import GrpcHost
from services.kit.migrations import upgrade
from services.kit.revocation import RevokedSessions

log = structlog.get_logger("keiko")


@dataclass
class RunningPlatform:
    grpc_port: int
    http_port: int | None
    chain_rpc_url: str | None
    services: list[str]
    host: GrpcHost
    settings: Settings
    notes: list[str] = field(default_factory=list)


def jwt_keys(settings: Settings, hosts_identity: bool) -> tuple[bytes | None, bytes]:
    """(private key if this process issues tokens, public key every service verifies with)."""
    if settings.jwt_public_key_file and not hosts_identity:
        return None, settings.jwt_public_key_file.read_bytes()
    private = load_or_create_signing_key(settings.jwt_key_path)
    return private, public_key_pem(private)


async def migrate(database: Database, definitions: list[ServiceDefinition]) -> list[str]:
    """Apply every hosted service's migrations; returns the services migrated."""
    await database.create_schemas()
    done = []
    for definition in definitions:
        if definition.migrations_dir is not None:
            await upgrade(database, definition.name, definition.migrations_dir)
            done.append(definition.name)
    return done


@asynccontextmanager
async def embedded_chain_node(settings: Settings) -> AsyncIterator[str]:
    """The embedded Keikochain node in its own process (the Cairo VM is CPU-bound); yields
    its RPC URL."""
    from chain.node.process import astart_node_process

    data_dir = settings.data_dir / "chain"
    node = await astart_node_process(
        data_dir,
        settings.chain_node_host,
        settings.chain_node_port or None,
        log_path=data_dir / "node.log",
    )
    try:
        yield node.rpc_url
    finally:
        await node.astop()


@asynccontextmanager
async def _background_jobs(runtime: ServiceRuntime) -> AsyncIterator[None]:
    """Run the services' jobs (outbox relays, consumers); stop them after the host."""
    stop = asyncio.Event()
    tasks = {name: asyncio.create_task(job(stop), name=name) for name, job in runtime.jobs.items()}
    try:
        yield
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks.values(), timeout=10) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error(
                    "background job failed", job=task.get_name(), error=repr(task.exception())
                )


def with_concrete_ports(settings: Settings) -> Settings:
    """Port 0 ("any free port") resolved up front: services derive URLs from the ports
    when they are built (share links, the translator's address), before anything binds."""
    updates = {}
    for name, host in (("grpc_port", settings.grpc_host), ("http_port", settings.http_host)):
        if getattr(settings, name) == 0:
            with socket.socket() as probe:
                probe.bind((host, 0))
                updates[name] = probe.getsockname()[1]
    return settings.model_copy(update=updates) if updates else settings


class PortInUse(RuntimeError):
    """A port the platform must open is taken: start-up stops before anything runs."""


def refuse_ports_in_use(settings: Settings, *, with_gateway: bool, with_grpc: bool = True) -> None:
    """Stop start-up with a clear message when a port we must open is taken (the chain
    node's is checked where it starts: chain.node.process). Binding later would fail
    less clearly, or, for a node port, leave us talking to whatever holds it."""
    wanted = []
    if with_grpc:
        wanted.append(("gRPC", settings.grpc_host, settings.grpc_port, "KEIKO_GRPC_PORT"))
    if with_gateway:
        wanted.append(("HTTP", settings.http_host, settings.http_port, "KEIKO_HTTP_PORT"))
    for what, host, port, variable in wanted:
        if port_in_use(host, port):
            raise PortInUse(
                f"the {what} port {host}:{port} is already in use "
                f"(set {variable} to a free port, or 0 for any)"
            )


@asynccontextmanager
async def running_platform(
    settings: Settings,
    definitions: list[ServiceDefinition],
    *,
    with_gateway: bool = True,
    with_chain: bool = True,
    slot: WorkerSlot | None = None,
) -> AsyncIterator[RunningPlatform]:
    names = [d.name for d in definitions]
    settings = with_concrete_ports(settings)
    # The gateway calls this process's own services unless told to call others.
    co_hosting = not settings.services_target
    if slot is None:
        refuse_ports_in_use(settings, with_gateway=with_gateway)
    elif not settings.services_target:
        # "This process's own gRPC port": the worker's own, not the shared one (which
        # the kernel may hand to another worker).
        settings = settings.model_copy(
            update={"services_target": f"127.0.0.1:{slot.local_grpc_port}"}
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        if with_chain and not settings.chain_rpc_url:
            node_url = await stack.enter_async_context(embedded_chain_node(settings))
            # Every service reads the chain from settings: point them at the node we run
            # (its deployment.json is in <data dir>/chain, where services look by default).
            settings = settings.model_copy(update={"chain_rpc_url": node_url})

        private_pem, public_pem = jwt_keys(settings, "identity" in names)
        clock = SystemClock()
        database = Database(settings.resolved_database_url, schemas=names)
        stack.push_async_callback(database.dispose)
        notes = []
        if settings.embedded_database:
            migrated = await migrate(database, definitions)
            notes.append(f"migrations applied: {', '.join(migrated) or 'none'}")
        bus = event_bus_from_url(settings.event_bus_url)
        stack.push_async_callback(bus.close)
        fanout = EventFanout(bus, name="keiko")
        stack.push_async_callback(fanout.close)

        revoked = RevokedSessions(clock)
        runtime = ServiceRuntime(
            settings=settings,
            database=database,
            event_bus=bus,
            clock=clock,
            token_verifier=TokenVerifier(public_pem, clock, revoked_sessions=revoked),
            jwt_private_key_pem=private_pem,
            fanout=fanout,
        )
        runtime.run_in_background("auth.session_revocations", revoked.job(bus))
        host = GrpcHost(
            [d.build(runtime) for d in definitions],
            token_verifier=runtime.token_verifier,
            descriptor_set=DESCRIPTOR_SET_PATH.read_bytes(),
            address=settings.grpc_address,
            reuse_port=slot is not None,
            extra_addresses=[settings.services_target] if slot is not None else (),
        )
        if co_hosting:
            runtime.co_host = host  # the services' calls to each other (the translator)
        await stack.enter_async_context(_background_jobs(runtime))
        grpc_port = await host.start()
        stack.push_async_callback(host.stop, settings.shutdown_grace_seconds)

        http_port = None
        if with_gateway:
            http_port = await stack.enter_async_context(
                running_gateway(
                    settings,
                    sock=_worker_socket(settings, slot),
                    co_hosted=host if co_hosting else None,
                )
            )
        yield RunningPlatform(
            grpc_port, http_port, settings.chain_rpc_url or None, names, host, settings, notes
        )


def _worker_socket(settings: Settings, slot: WorkerSlot | None) -> socket.socket | None:
    """A worker's HTTP socket, shared with the other workers; None: uvicorn binds alone."""
    if slot is None:
        return None
    return reuse_port_socket(settings.http_host, settings.http_port)


WORKER_INFO = Info("keiko_worker", "This worker process of keiko serve --workers")


def announce_worker(slot: WorkerSlot | None) -> None:
    """/metrics of a worker names it (each worker answers for itself)."""
    if slot is not None:
        WORKER_INFO.info(
            {"worker": str(slot.index), "workers": str(slot.count), "pid": str(os.getpid())}
        )


def banner(
    platform: RunningPlatform, definitions: list[ServiceDefinition], settings: Settings
) -> str:
    lines = ["Keiko is running"]
    lines.append(f"  gRPC      {settings.grpc_host}:{platform.grpc_port}  (health, reflection)")
    for servicer in platform.host.servicers:
        methods = adapter.describe(servicer)
        service = methods[0].service if methods else type(servicer).__name__
        done = sum(m.implemented for m in methods)
        lines.append(f"    - {service:<40} {done}/{len(methods)} RPCs implemented")
    if platform.http_port is not None:
        # localhost, not 127.0.0.1: browsers accept passkeys for a name, never an address.
        base = settings.model_copy(update={"http_port": platform.http_port}).public_gateway_url
        lines.append(f"  web app   {base}/app  (sign up with a passkey, record, share, verify)")
        lines.append(
            f"  GraphQL   {base}/graphql  (GraphiQL in a browser; ws: graphql-transport-ws)"
        )
        lines.append(f"  ops       {base}/healthz  {base}/readyz  {base}/metrics")
    if platform.chain_rpc_url:
        lines.append(f"  chain     {platform.chain_rpc_url}  (Starknet JSON-RPC)")
    lines.append(f"  database  {settings.resolved_database_url.split('@')[-1]}")
    lines.append(f"  events    {settings.event_bus_url.split('@')[-1]}")
    lines.extend(f"  {note}" for note in platform.notes)
    lines.append("Ctrl-C stops (health turns NOT_SERVING first).")
    return "\n".join(lines)


def gateway_banner(http_port: int, settings: Settings) -> str:
    base = settings.model_copy(update={"http_port": http_port}).public_gateway_url
    lines = ["Keiko gateway is running"]
    lines.append(f"  GraphQL   {base}/graphql  (ws: graphql-transport-ws)")
    lines.append(f"  ops       {base}/healthz  {base}/readyz  {base}/metrics")
    for name in [*ALL_SERVICES, "chain"]:
        lines.append(f"  {name:<12}  {settings.target_of(name)}")
    lines.append("Ctrl-C stops.")
    return "\n".join(lines)


async def serve_gateway(settings: Settings, slot: WorkerSlot | None = None) -> None:
    """The GraphQL/HTTP gateway alone (no services, no database, no bus): it calls each
    service where ``services_target`` / ``service_targets`` say, balancing replicas."""
    stop = _stop_on_signals()
    settings = with_concrete_ports(settings)
    if slot is None:
        refuse_ports_in_use(settings, with_gateway=True, with_grpc=False)
    announce_worker(slot)
    async with running_gateway(settings, sock=_worker_socket(settings, slot)) as http_port:
        _announce(gateway_banner(http_port, settings), slot)
        await stop.wait()
        log.info("shutting down")


def _announce(text: str, slot: WorkerSlot | None) -> None:
    """The banner: printed, or, in a worker, handed to the supervisor (which prints one
    for all workers)."""
    if slot is None:
        print(text, file=sys.stdout, flush=True)
    else:
        slot.report_ready(text)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(
    settings: Settings,
    definitions: list[ServiceDefinition],
    *,
    with_gateway: bool,
    with_chain: bool,
    slot: WorkerSlot | None = None,
) -> None:
    stop = _stop_on_signals()
    announce_worker(slot)
    async with running_platform(
        settings, definitions, with_gateway=with_gateway, with_chain=with_chain, slot=slot
    ) as platform:
        _announce(banner(platform, definitions, settings), slot)
        await stop.wait()
        log.info("shutting down")
