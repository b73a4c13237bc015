"""Runs the gateway's ASGI app under uvicorn, inside the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import grpc
import uvicorn

from keiko.settings import Settings
from services.kit.auth import TokenVerifier, public_key_pem
from services.kit.clock import SystemClock
from services.kit.grpc.client import open_service_channel
from services.kit.grpc.server import GrpcHost


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns SIGINT/SIGTERM and
    stops the gateway itself, after health has turned NOT_SERVING."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _token_verifier(settings: Settings) -> TokenVerifier | None:
    """Verifies access tokens at the gateway (to choose a caller's cost limit) with the
    key the services use, when this process can read it."""
    if settings.jwt_public_key_file is not None:
        public = settings.jwt_public_key_file.read_bytes()
    elif settings.jwt_key_path.exists():
        public = public_key_pem(settings.jwt_key_path.read_bytes())
    else:
        return None
    return TokenVerifier(public, SystemClock())


def service_channel(settings: Settings, co_hosted: GrpcHost | None = None) -> grpc.aio.Channel:
    """The gateway's channel to the services: to where the settings say, but calls to the
    services `co_hosted` serves in this process run in process (services.kit.grpc.local),
    unless KEIKO_LOCAL_CALLS=0 or the settings place the service elsewhere."""
    channel = open_service_channel(
        settings.gateway_target,
        settings.service_targets,
        deadline_seconds=settings.gateway_rpc_deadline_seconds,
    )
    if co_hosted is None or not settings.local_calls:
        return channel
    return co_hosted.local_channel(
        channel,
        deadline_seconds=settings.gateway_rpc_deadline_seconds,
        remote=settings.remote_services,
    )


@asynccontextmanager
async def running_gateway(
    settings: Settings, sock: socket.socket | None = None, co_hosted: GrpcHost | None = None
) -> AsyncIterator[int]:
    """Yields the bound HTTP port (settings.http_port may be 0 for "any free port").
    `sock`: a listening socket made by the caller (a worker's, bound with SO_REUSEPORT).
    `co_hosted`: the services' host when it runs in this process (see service_channel)."""
    from gateway.app import create_app
    from gateway.schema import build_schema

    channel = service_channel(settings, co_hosted)
    app = create_app(
        build_schema(
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_tokens=settings.graphql_max_tokens,
            max_cost=settings.graphql_max_cost,
            max_anonymous_cost=settings.graphql_max_anonymous_cost,
            deadline_seconds=settings.graphql_deadline_seconds,
            passport_cache_bytes=settings.graphql_passport_cache_bytes,
        ),
        channel,
        chain_rpc_url=settings.chain_rpc_url,
        public_base_url=settings.public_base_url,
        explorer_tx_url=settings.explorer_tx_url,
        cors_origins=settings.cors_origins,
        token_verifier=_token_verifier(settings),
    )
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        # No permessage-deflate: GraphQL's WebSocket messages are small JSON, and a
        # compressor per connection (its own window, run for every message) was a third
        # of the CPU of sending one update to 1,000 subscribers (scripts/bench/subscriptions.py).
        ws_per_message_deflate=False,
        # A long request (a subscription, a slow page) must not hold shutdown past the
        # platform's grace period: after it, open connections are closed.
        timeout_graceful_shutdown=max(math.ceil(settings.shutdown_grace_seconds), 1),
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
    while not server.started:
        if task.done():
            await task  # surfaces the bind error
            raise OSError(f"gateway failed to start on {settings.http_host}:{settings.http_port}")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        await channel.close()
