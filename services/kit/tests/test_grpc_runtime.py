"""The gRPC runtime end to end: adapter, interceptors, health, reflection, typed client."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from services.kit import errors
from services.kit.auth import TOKEN_EXPIRED, Principal, current_principal
from services.kit.clock import FixedClock
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.server import GrpcHost
from services.kit.grpc.testing import access_token, running_host, token_pair
from services.kit.metrics import GRPC_HANDLED
from services.kit.revocation import RevokedSessions

PROTO = Path(__file__).with_name("demo.proto")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, bytes]]:
    """Compile demo.proto with the same toolchain as scripts/gen_proto.py."""
    out = tmp_path_factory.mktemp("demo_api")
    plugin = Path(sys.executable).with_name("protoc-gen-python_betterproto")
    descriptors = out / "demo.binpb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"--plugin=protoc-gen-python_betterproto={plugin}",
            f"--python_betterproto_out={out}",
            f"--descriptor_set_out={descriptors}",
            "--include_imports",
            str(PROTO),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("keikotest.demo.v1"), descriptors.read_bytes()
    finally:
        sys.path.remove(str(out))


def make_servicer(api: ModuleType) -> Any:
    class DemoServicer(api.DemoServiceBase):  # type: ignore[name-defined,misc]
        public_methods = frozenset({"PublicEcho"})

        async def echo(self, request: Any) -> Any:
            failures: dict[str, Exception] = {
                "": errors.ValidationError("text", "must not be empty"),
                "missing": errors.NotFound("no such thing"),
                "taken": errors.AlreadyExists("slot already booked"),
                "forbidden": errors.PermissionDenied("not your passport"),
                "early": errors.FailedPrecondition("voting has not started"),
                "slow down": errors.RateLimited("too many attempts"),
                "boom": KeyError("secret internal detail"),
            }
            if request.text in failures:
                raise failures[request.text]
            return api.EchoResponse(
                text=request.text, caller=current_principal().user_id, at=request.at
            )

        async def public_echo(self, request: Any) -> Any:
            return api.EchoResponse(text=request.text, caller="anonymous")

        async def count(self, request: Any) -> AsyncIterator[Any]:
            for i in range(3):
                yield api.EchoResponse(text=f"{request.text}-{i}")
            raise errors.FailedPrecondition("stream closed by the domain")

    return DemoServicer()


@pytest.fixture(params=["grpc", "local"])
def transport(request: pytest.FixtureRequest) -> str:
    """Every runtime behaviour over loopback gRPC and over the in-process channel
    (services.kit.grpc.local), which must not be told apart."""
    return str(request.param)


def client_channel(host: GrpcHost, transport: str) -> grpc.aio.Channel:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    return channel if transport == "grpc" else host.local_channel(channel)


@pytest.fixture
async def server(demo: tuple[ModuleType, bytes], transport: str) -> AsyncIterator[dict[str, Any]]:
    api, descriptors = demo
    clock = FixedClock(datetime.now(UTC))
    issuer, verifier = token_pair(clock)
    async with running_host(
        [make_servicer(api)], token_verifier=verifier, descriptor_set=descriptors
    ) as host:
        channel = client_channel(host, transport)
        yield {
            "api": api,
            "host": host,
            "channel": channel,
            "issuer": issuer,
            "clock": clock,
            "client": stub(
                api.DemoServiceStub, channel, access_token=access_token(issuer, "user-1")
            ),
        }
        await channel.close()


async def test_authenticated_call_sees_the_caller_and_roundtrips_timestamps(server: dict) -> None:
    api = server["api"]
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    response = await server["client"].echo(api.EchoRequest(text="hi", at=at))
    assert (response.text, response.caller, response.at) == ("hi", "user-1", at)


async def test_missing_token_is_unauthenticated(server: dict) -> None:
    anonymous = stub(server["api"].DemoServiceStub, server["channel"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anonymous.echo(server["api"].EchoRequest(text="hi"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "missing authorization metadata"


async def test_tampered_token_is_unauthenticated(server: dict) -> None:
    token = access_token(server["issuer"], "user-1")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    client = stub(server["api"].DemoServiceStub, server["channel"], access_token=forged)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.echo(server["api"].EchoRequest(text="hi"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "invalid token signature"


async def test_token_from_another_key_is_rejected(server: dict) -> None:
    other_issuer, _ = token_pair(server["clock"])
    client = stub(
        server["api"].DemoServiceStub,
        server["channel"],
        access_token=access_token(other_issuer, "user-1"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.echo(server["api"].EchoRequest(text="hi"))
    assert caught.value.details() == "invalid token signature"


async def test_expired_token_is_unauthenticated(server: dict) -> None:
    token = access_token(server["issuer"], "user-1")
    server["clock"].advance(timedelta(minutes=16))
    client = stub(server["api"].DemoServiceStub, server["channel"], access_token=token)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.echo(server["api"].EchoRequest(text="hi"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "token expired"


async def test_public_method_needs_no_token(server: dict) -> None:
    anonymous = stub(server["api"].DemoServiceStub, server["channel"])
    response = await anonymous.public_echo(server["api"].EchoRequest(text="hi"))
    assert response.caller == "anonymous"


async def test_validation_error_is_invalid_argument_with_field_path(server: dict) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server["client"].echo(server["api"].EchoRequest(text=""))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "text: must not be empty"
    assert field_violations(caught.value) == [("text", "must not be empty")]


@pytest.mark.parametrize(
    ("text", "code", "details"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, "no such thing"),
        ("taken", grpc.StatusCode.ALREADY_EXISTS, "slot already booked"),
        ("forbidden", grpc.StatusCode.PERMISSION_DENIED, "not your passport"),
        ("early", grpc.StatusCode.FAILED_PRECONDITION, "voting has not started"),
        ("slow down", grpc.StatusCode.RESOURCE_EXHAUSTED, "too many attempts"),
        ("boom", grpc.StatusCode.INTERNAL, "internal error"),
    ],
)
async def test_domain_errors_map_to_codes_and_bugs_are_masked(
    server: dict, text: str, code: grpc.StatusCode, details: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server["client"].echo(server["api"].EchoRequest(text=text))
    assert (caught.value.code(), caught.value.details()) == (code, details)


async def test_unimplemented_rpc_names_itself(server: dict) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server["client"].later(server["api"].EchoRequest(text="x"))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == (
        "keikotest.demo.v1.DemoService.Later is not implemented in this Keiko release"
    )


async def test_undecodable_request_is_invalid_argument(server: dict) -> None:
    raw = server["channel"].unary_unary(
        "/keikotest.demo.v1.DemoService/PublicEcho",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\x0a\xff\xff\xff\xff")  # field 1, length far beyond the buffer
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("request: cannot decode EchoRequest")


async def test_server_stream_delivers_then_maps_domain_error(server: dict) -> None:
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in server["client"].count(server["api"].EchoRequest(text="n")):
            received.append(message.text)
    assert received == ["n-0", "n-1", "n-2"]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_stream_stops_once_its_session_is_revoked(
    demo: tuple[ModuleType, bytes], transport: str
) -> None:
    api, descriptors = demo
    clock = FixedClock(datetime.now(UTC))
    issuer, verifier = token_pair(clock)
    revoked = RevokedSessions(clock)
    verifier.revoked_sessions = revoked
    go_on = asyncio.Event()

    class PausingServicer(type(make_servicer(api))):  # type: ignore[misc]
        async def count(self, request: Any) -> AsyncIterator[Any]:
            yield api.EchoResponse(text="first")
            await go_on.wait()
            yield api.EchoResponse(text="second")

    ana = Principal(user_id="ana", roles=frozenset({"learner"}), session_id="s-ana")
    async with (
        running_host(
            [PausingServicer()], token_verifier=verifier, descriptor_set=descriptors
        ) as host,
        client_channel(host, transport) as channel,
    ):
        client = stub(api.DemoServiceStub, channel, access_token=issuer.issue(ana).token)
        stream = aiter(client.count(api.EchoRequest(text="n")))
        assert (await anext(stream)).text == "first"
        revoked.add("s-ana", clock.now() + timedelta(minutes=16))  # logged out meanwhile
        go_on.set()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await anext(stream)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "session has been revoked"


async def test_a_stream_ends_when_its_access_token_expires(
    demo: tuple[ModuleType, bytes], transport: str
) -> None:
    """Issue 9: a stream opened with a token delivers nothing once the token expired; it
    ends UNAUTHENTICATED with a message telling the client to reconnect."""
    api, descriptors = demo
    clock = FixedClock(datetime.now(UTC))
    issuer, verifier = token_pair(clock, ttl=timedelta(minutes=15))
    go_on = asyncio.Event()

    class PausingServicer(type(make_servicer(api))):  # type: ignore[misc]
        async def count(self, request: Any) -> AsyncIterator[Any]:
            yield api.EchoResponse(text="first")
            await go_on.wait()
            yield api.EchoResponse(text="second")

    ana = Principal(user_id="ana", roles=frozenset({"learner"}), session_id="s-ana")
    async with (
        running_host(
            [PausingServicer()], token_verifier=verifier, descriptor_set=descriptors
        ) as host,
        client_channel(host, transport) as channel,
    ):
        client = stub(api.DemoServiceStub, channel, access_token=issuer.issue(ana).token)
        stream = aiter(client.count(api.EchoRequest(text="n")))
        assert (await anext(stream)).text == "first"
        clock.advance(timedelta(minutes=16))  # the token expired meanwhile
        go_on.set()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await anext(stream)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (
        caught.value.details()
        == TOKEN_EXPIRED
        == ("access token expired: reconnect with a fresh access token")
    )


async def test_request_id_is_adopted_or_generated_and_sent_back(server: dict) -> None:
    """A caller's id is used as is (it knows it: nothing is sent back); a new one is sent
    back in the initial metadata, as is one too long or unprintable to adopt."""
    call = server["channel"].unary_unary(
        "/keikotest.demo.v1.DemoService/PublicEcho",
        request_serializer=bytes,
        response_deserializer=lambda b: b,
    )
    given = call(server["api"].EchoRequest(text="x"), metadata=[("x-request-id", "req-42")])
    await given
    assert [k for k, _ in await given.initial_metadata() if k == "x-request-id"] == []
    for metadata in ([], [("x-request-id", "r" * 129)]):
        generated = call(server["api"].EchoRequest(text="x"), metadata=metadata)
        await generated
        ids = [v for k, v in await generated.initial_metadata() if k == "x-request-id"]
        assert len(ids) == 1 and len(ids[0]) == 32


async def test_metrics_count_rpcs_by_code(server: dict) -> None:
    labels = ("keikotest.demo.v1.DemoService", "Echo", "NOT_FOUND")
    before = GRPC_HANDLED.labels(*labels)._value.get()
    with pytest.raises(grpc.aio.AioRpcError):
        await server["client"].echo(server["api"].EchoRequest(text="missing"))
    # The server counts once its handler has returned, which may be just after the client
    # has read the status: wait (bounded) for the count rather than race it.
    for _ in range(200):
        if GRPC_HANDLED.labels(*labels)._value.get() != before:
            break
        await asyncio.sleep(0.025)
    assert GRPC_HANDLED.labels(*labels)._value.get() == before + 1


async def test_health_serving_then_not_serving_on_stop(server: dict) -> None:
    health = health_pb2_grpc.HealthStub(server["channel"])
    for name in ("", "keikotest.demo.v1.DemoService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    host = server["host"]
    await host.stop(grace=0.1)
    reply = await host.health.Check(
        health_pb2.HealthCheckRequest(service="keikotest.demo.v1.DemoService"), None
    )
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_hosted_services(server: dict) -> None:
    def list_services() -> list[str]:
        with grpc.insecure_channel(f"127.0.0.1:{server['host'].port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            services = list(database.get_services())
            database.FindFileContainingSymbol("keikotest.demo.v1.DemoService")
            return services

    services = await asyncio.to_thread(list_services)
    assert "keikotest.demo.v1.DemoService" in services
    assert "grpc.health.v1.Health" in services


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("ipv4:10.1.2.3:5555", "10.1.2.3"), ("ipv6:[::1]:5555", "::1"), ("unix:/tmp/s", "/tmp/s")],
)
def test_peer_ip_parsing(peer: str, expected: str) -> None:
    from services.kit.grpc.interceptors import _peer_ip

    assert _peer_ip(peer) == expected


async def test_forwarded_address_is_trusted_only_from_local_proxies(
    demo: tuple[ModuleType, bytes], transport: str
) -> None:
    from services.kit.grpc.interceptors import client_address

    api, descriptors = demo
    seen: list[str] = []

    class AddressServicer(api.DemoServiceBase):  # type: ignore[name-defined,misc]
        public_methods = frozenset({"PublicEcho"})

        async def public_echo(self, request: Any) -> Any:
            seen.append(client_address())
            return api.EchoResponse(text=request.text)

    clock = FixedClock(datetime.now(UTC))
    _, verifier = token_pair(clock)
    async with (
        running_host(
            [AddressServicer()], token_verifier=verifier, descriptor_set=descriptors
        ) as host,
        client_channel(host, transport) as channel,
    ):
        client = stub(api.DemoServiceStub, channel)
        await client.public_echo(api.EchoRequest(text="a"))
        await client.public_echo(
            api.EchoRequest(text="b"), metadata=[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]
        )
    # The loopback peer is a trusted proxy: its forwarded client is believed.
    assert seen == ["127.0.0.1", "203.0.113.9"]
