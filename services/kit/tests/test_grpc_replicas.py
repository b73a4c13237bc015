"""Replicas behind one channel: round robin over the addresses, health-checked, and the
RoutedChannel that sends each Keiko service's calls to its own replicas."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from keiko.settings import Settings
from services.kit.clock import FixedClock
from services.kit.grpc.client import (
    RoutedChannel,
    open_channel,
    open_service_channel,
    service_of,
    stub,
)
from services.kit.grpc.server import GrpcHost
from services.kit.grpc.testing import running_host, token_pair
from services.kit.tests.test_grpc_runtime import demo  # noqa: F401  (the compiled demo API)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def named_servicer(api: ModuleType, name: str) -> Any:
    class Replica(api.DemoServiceBase):  # type: ignore[name-defined,misc]
        public_methods = frozenset({"PublicEcho"})

        async def public_echo(self, request: Any) -> Any:
            return api.EchoResponse(text=name, caller="anonymous")

    return Replica()


@pytest.fixture
async def replicas(demo: tuple[ModuleType, bytes]) -> AsyncIterator[tuple[Any, list[GrpcHost]]]:  # noqa: F811
    api, descriptors = demo
    _, verifier = token_pair(FixedClock(datetime.now(UTC)))
    async with AsyncExitStack() as stack:
        hosts = [
            await stack.enter_async_context(
                running_host(
                    [named_servicer(api, name)], token_verifier=verifier, descriptor_set=descriptors
                )
            )
            for name in ("a", "b")
        ]
        yield api, hosts


async def answered_by(client: Any, api: ModuleType, calls: int = 12) -> Counter[str]:
    replies = [await client.public_echo(api.EchoRequest(text="?"), timeout=5) for _ in range(calls)]
    return Counter(r.text for r in replies)


async def eventually(check: Any, what: str, timeout: float = 10) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_replicas_are_balanced_and_a_draining_or_dead_one_is_skipped(
    replicas: tuple[Any, list[GrpcHost]],
) -> None:
    api, (a, b) = replicas
    channel = open_channel(f"127.0.0.1:{a.port}, 127.0.0.1:{b.port}")
    client = stub(api.DemoServiceStub, channel)
    try:
        assert set(await answered_by(client, api)) == {"a", "b"}
        # A replica that says NOT_SERVING (it is draining) gets no more calls ...
        await a.health.set("", NOT_SERVING)

        async def only_b() -> bool:
            return set(await answered_by(client, api)) == {"b"}

        await eventually(only_b, "calls to skip the NOT_SERVING replica")
        # ... and comes back when it serves again.
        await a.health.set("", SERVING)

        async def both() -> bool:
            return set(await answered_by(client, api)) == {"a", "b"}

        await eventually(both, "calls to reach the replica serving again")
        # A replica that is gone is skipped without a failed call.
        await a.stop(grace=0)
        await eventually(only_b, "calls to skip the stopped replica")
        assert set(await answered_by(client, api, calls=20)) == {"b"}
    finally:
        await channel.close()


def test_each_service_call_goes_to_its_own_replicas() -> None:
    assert service_of("/keiko.learning.v1.LearningService/RecordInteraction") == "learning"
    assert service_of("/keiko.chain.v1.ChainService/GetChainInfo") == "chain"
    assert service_of("/grpc.health.v1.Health/Check") == ""
    settings = Settings(
        grpc_port=50051,
        service_targets={"learning": "127.0.0.1:7001,127.0.0.1:7002", "chain": "127.0.0.1:7003"},
    )
    assert settings.target_of("learning") == "127.0.0.1:7001,127.0.0.1:7002"
    assert settings.target_of("identity") == "127.0.0.1:50051"
    with pytest.raises(ValueError, match="unknown service"):
        Settings(service_targets={"lerning": "127.0.0.1:1"})


async def test_the_routed_channel_picks_the_service_channel() -> None:
    channel = open_service_channel(
        "127.0.0.1:50051", {"learning": "127.0.0.1:7001,127.0.0.1:7002", "chain": "127.0.0.1:7003"}
    )
    try:
        assert isinstance(channel, RoutedChannel)
        learning = channel.channel_for("/keiko.learning.v1.LearningService/RecordInteraction")
        chain = channel.channel_for("/keiko.chain.v1.ChainService/GetChainInfo")
        identity = channel.channel_for("/keiko.identity.v1.IdentityService/GetMe")
        assert len({id(learning), id(chain), id(identity)}) == 3
        assert identity is channel.default is channel.channel_for("/grpc.health.v1.Health/Check")
        assert len(channel.channels()) == 3
    finally:
        await channel.close()
