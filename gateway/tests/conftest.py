"""A live gateway (uvicorn on a free port) in front of a live gRPC host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from betterproto.grpc.grpclib_server import ServiceBase

from gateway.server import running_gateway
from keiko.settings import Settings
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.grpc.server import GrpcHost
from services.kit.grpc.testing import running_host, token_pair


@dataclass
class LiveGateway:
    url: str
    ws_url: str
    host: GrpcHost
    issuer: TokenIssuer
    clock: FixedClock
    http: httpx.AsyncClient

    async def graphql(
        self, query: str, variables: dict | None = None, token: str | None = None
    ) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


GatewayFactory = Callable[..., AbstractAsyncContextManager[LiveGateway]]


@pytest.fixture
def live_gateway() -> GatewayFactory:
    @asynccontextmanager
    async def start(
        servicers: list[ServiceBase] | None = None,
        *,
        clock: FixedClock | None = None,
        issuer_verifier: tuple | None = None,
        **settings: object,
    ) -> AsyncIterator[LiveGateway]:
        clock = clock or FixedClock(datetime.now(UTC))
        issuer, verifier = issuer_verifier or token_pair(clock)
        async with running_host(servicers or [], token_verifier=verifier) as host:
            config = Settings(
                http_port=0,
                services_target=f"127.0.0.1:{host.port}",
                **settings,  # type: ignore[arg-type]
            )
            # As keiko serve runs them: the gateway calls the host in process (unless a
            # test turns local_calls off).
            async with running_gateway(config, co_hosted=host) as port:
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    yield LiveGateway(
                        base, f"ws://127.0.0.1:{port}/graphql", host, issuer, clock, http
                    )

    return start
