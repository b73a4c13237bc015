"""A grpcio asyncio server hosting any set of Keiko services.

Adds standard health checking (grpc.health.v1, one status per hosted service plus the
overall "" entry) and server reflection from the committed descriptor set. Shutdown is
graceful: health turns NOT_SERVING first so load balancers drain, then in-flight RPCs
get a grace period.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable, Sequence

import grpc
from betterproto.grpc.grpclib_server import ServiceBase
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from services.kit import tracing
from services.kit.auth import TokenVerifier
from services.kit.grpc import adapter, interceptors
from services.kit.grpc.client import MAX_MESSAGE_BYTES
from services.kit.grpc.local import LocalChannel, LocalHost

HEALTH_METHODS = frozenset(
    {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/grpc.health.v1.Health/List"}
)
REFLECTION_METHODS = frozenset(
    {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


def public_methods_of(servicer: ServiceBase) -> set[str]:
    """Full method names a servicer declares callable without an access token."""
    declared: frozenset[str] = getattr(servicer, "public_methods", frozenset())
    return {m.full_name for m in adapter.describe(servicer) if m.name in declared}


def descriptor_pool_from(descriptor_set: bytes) -> descriptor_pool.DescriptorPool:
    """Keiko's descriptors plus health and reflection, so reflection can describe them all."""
    files = list(descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file)
    for module in (health_pb2, reflection_pb2):
        files.append(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    for file in files:
        if file.name not in added:
            pool.Add(file)
            added.add(file.name)
    return pool


class GrpcHost:
    """Hosts servicers on one port. `start()` binds and returns the port."""

    def __init__(
        self,
        servicers: Sequence[ServiceBase],
        *,
        token_verifier: TokenVerifier,
        descriptor_set: bytes,
        address: str = "127.0.0.1:50051",
        extra_public_methods: Iterable[str] = (),
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        reuse_port: bool = False,
        extra_addresses: Sequence[str] = (),
    ) -> None:
        """``reuse_port``: several processes (``keiko serve --workers``) listen on the same
        ``address`` and the kernel spreads connections among them; off, a taken port
        fails the bind. ``extra_addresses`` are listened on too (a worker's own loopback
        port, where its gateway calls its co-hosted services)."""
        self.servicers = list(servicers)
        self.service_names = sorted(
            {name for s in self.servicers for name in adapter.service_names(s)}
        )
        public = set(HEALTH_METHODS | REFLECTION_METHODS) | set(extra_public_methods)
        for servicer in self.servicers:
            public |= public_methods_of(servicer)
        chain = [
            # Only when tracing is on: off, no per-RPC cost at all.
            *([interceptors.tracing_interceptor()] if tracing.enabled() else []),
            interceptors.keiko_interceptor(token_verifier, public),
            # A servicer may add its own (e.g. learning's LRS Basic auth), innermost.
            *(i for servicer in self.servicers for i in getattr(servicer, "interceptors", ())),
        ]
        handlers = {
            name: handler
            for servicer in self.servicers
            for name, handler in adapter.method_handlers(servicer).items()
        }
        # The same handlers and interceptors, for callers in this process (LocalChannel).
        self.local = LocalHost(handlers, chain, max_message_bytes)
        self._server = grpc.aio.server(
            interceptors=chain,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
        )
        for servicer in self.servicers:
            self._server.add_generic_rpc_handlers(adapter.generic_handlers(servicer))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self._pool = descriptor_pool_from(descriptor_set)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME],
            self._server,
            pool=self._pool,
        )
        self._address = address
        self._extra_addresses = list(extra_addresses)
        self.port = 0

    async def start(self) -> int:
        self.local.context = contextvars.copy_context()
        self.port = self._server.add_insecure_port(self._address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {self._address}")
        for extra in self._extra_addresses:
            if self._server.add_insecure_port(extra) == 0:
                raise OSError(f"cannot bind gRPC server to {extra}")
        await self._server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        return self.port

    def local_channel(
        self,
        fallback: grpc.aio.Channel,
        *,
        deadline_seconds: float | None = None,
        remote: Iterable[str] = (),
    ) -> LocalChannel:
        """A channel calling this host's services in process (but those of `remote`
        services, by name, and anything else, go to `fallback`): services.kit.grpc.local."""
        return LocalChannel(
            self.local, fallback, deadline_seconds=deadline_seconds, remote=frozenset(remote)
        )

    async def stop(self, grace: float = 5.0) -> None:
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        # New in-process calls are refused, as new connections are; running ones finish.
        self.local.serving = False
        await self._server.stop(grace)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()

    async def _set_health(self, status: int) -> None:
        for name in ["", *self.service_names]:
            await self.health.set(name, status)


async def serve_forever(host: GrpcHost, stop: asyncio.Event, grace: float = 5.0) -> None:
    await host.start()
    await stop.wait()
    await host.stop(grace)
