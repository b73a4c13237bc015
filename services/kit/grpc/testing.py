"""Helpers for servicer tests: a real server on a free port and signed tokens."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import grpc
from betterproto.grpc.grpclib_server import ServiceBase

from services.api import DESCRIPTOR_SET_PATH
from services.kit.auth import (
    Principal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key_pem,
    public_key_pem,
)
from services.kit.clock import Clock
from services.kit.grpc.client import MESSAGE_SIZE_OPTIONS
from services.kit.grpc.server import GrpcHost


def token_pair(
    clock: Clock, ttl: timedelta = timedelta(minutes=15)
) -> tuple[TokenIssuer, TokenVerifier]:
    """A fresh signing key: an issuer and the verifier that trusts it."""
    private = generate_signing_key_pem()
    return TokenIssuer(private, clock, ttl), TokenVerifier(public_key_pem(private), clock)


def access_token(issuer: TokenIssuer, user_id: str, *roles: str) -> str:
    return issuer.issue(Principal(user_id=user_id, roles=frozenset(roles or ("learner",)))).token


@asynccontextmanager
async def running_host(
    servicers: Sequence[ServiceBase],
    *,
    token_verifier: TokenVerifier,
    descriptor_set: bytes | None = None,
) -> AsyncIterator[GrpcHost]:
    if descriptor_set is None:
        descriptor_set = DESCRIPTOR_SET_PATH.read_bytes()
    host = GrpcHost(
        servicers,
        token_verifier=token_verifier,
        descriptor_set=descriptor_set,
        address="127.0.0.1:0",
    )
    await host.start()
    try:
        yield host
    finally:
        await host.stop(grace=0.5)


def local_calls() -> bool:
    """KEIKO_LOCAL_CALLS as keiko.settings reads it (on unless 0/false/no/off)."""
    return os.environ.get("KEIKO_LOCAL_CALLS", "1").strip().lower() not in _OFF


_OFF = frozenset({"0", "false", "no", "off", "f", "n"})


@asynccontextmanager
async def running_server(
    servicers: Sequence[ServiceBase],
    *,
    token_verifier: TokenVerifier,
    descriptor_set: bytes | None = None,
) -> AsyncIterator[grpc.aio.Channel]:
    """Serve `servicers` on a free local port; yields a channel to them: in process, as
    the platform's gateway calls them (services.kit.grpc.local), or over loopback gRPC
    with KEIKO_LOCAL_CALLS=0."""
    async with (
        running_host(
            servicers, token_verifier=token_verifier, descriptor_set=descriptor_set
        ) as host,
        # The message size options of every production channel (services.kit.grpc.client).
        grpc.aio.insecure_channel(
            f"127.0.0.1:{host.port}", options=MESSAGE_SIZE_OPTIONS
        ) as channel,
    ):
        yield host.local_channel(channel) if local_calls() else channel
