"""The in-process channel (services.kit.grpc.local) answers every call exactly as loopback
gRPC does: the same results, codes, details, field paths and trailers, the same deadlines,
stream endings and cancellations, the same caller address and the same trace. Each test
makes the same calls over both and compares what came back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit import errors, tracing
from services.kit.auth import TokenIssuer, current_principal
from services.kit.clock import FixedClock
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.interceptors import client_address
from services.kit.grpc.local import LocalChannel
from services.kit.grpc.testing import access_token, running_host, token_pair
from services.kit.metrics import GRPC_HANDLED
from services.kit.tests.test_grpc_runtime import demo  # noqa: F401  (the compiled demo API)

Outcome = tuple[Any, ...]


class Recorder:
    """What the servicer saw: the caller's address, and the calls that were cancelled."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.cancelled: list[str] = []
        self.cancellation = asyncio.Event()
        self.started = asyncio.Event()


def parity_servicer(api: ModuleType, seen: Recorder) -> Any:
    class ParityServicer(api.DemoServiceBase):  # type: ignore[name-defined,misc]
        public_methods = frozenset({"PublicEcho"})

        async def echo(self, request: Any) -> Any:
            failures: dict[str, Exception] = {
                "": errors.ValidationError("text", "must not be empty"),
                "missing": errors.NotFound("no such thing"),
                "forbidden": errors.PermissionDenied("not your passport"),
                "slow down": errors.RateLimited("too many attempts"),
                "boom": KeyError("secret internal detail"),
            }
            if request.text in failures:
                raise failures[request.text]
            if request.text == "slow":
                seen.started.set()
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:
                    seen.cancelled.append("slow")
                    seen.cancellation.set()
                    raise
            return api.EchoResponse(
                text=request.text, caller=current_principal().user_id, at=request.at
            )

        async def public_echo(self, request: Any) -> Any:
            seen.addresses.append(client_address())
            return api.EchoResponse(text=request.text, caller="anonymous")

        async def count(self, request: Any) -> AsyncIterator[Any]:
            if request.text != "forever":
                for i in range(3):
                    yield api.EchoResponse(text=f"{request.text}-{i}")
                raise errors.FailedPrecondition("stream closed by the domain")
            i = 0
            try:
                while True:
                    yield api.EchoResponse(text=f"forever-{i}")
                    i += 1
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                seen.cancelled.append("forever")
                seen.cancellation.set()
                raise

    return ParityServicer()


@asynccontextmanager
async def both_channels(
    api: ModuleType, descriptors: bytes
) -> AsyncIterator[tuple[TokenIssuer, Recorder, dict[str, grpc.aio.Channel]]]:
    """One host; a loopback gRPC channel to it and an in-process one."""
    clock = FixedClock(datetime.now(UTC))
    issuer, verifier = token_pair(clock)
    seen = Recorder()
    async with running_host(
        [parity_servicer(api, seen)], token_verifier=verifier, descriptor_set=descriptors
    ) as host:
        wire = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
        local = host.local_channel(grpc.aio.insecure_channel(f"127.0.0.1:{host.port}"))
        assert isinstance(local, LocalChannel)
        try:
            yield issuer, seen, {"grpc": wire, "local": local}
        finally:
            await wire.close()
            await local.close()


async def outcome(call: Awaitable[Any]) -> Outcome:
    try:
        response = await call
    except grpc.aio.AioRpcError as error:
        trailers = sorted((k, v) for k, v in error.trailing_metadata() or () if k != "user-agent")
        return (error.code(), error.details(), trailers, field_violations(error))
    return ("OK", response.to_dict())


async def test_unary_calls_answer_alike(demo: tuple[ModuleType, bytes]) -> None:  # noqa: F811
    api, descriptors = demo
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    async with both_channels(api, descriptors) as (issuer, _, channels):
        results: dict[str, list[Outcome]] = {}
        for name, channel in channels.items():
            user = stub(api.DemoServiceStub, channel, access_token=access_token(issuer, "ana"))
            anonymous = stub(api.DemoServiceStub, channel)
            forged = stub(api.DemoServiceStub, channel, access_token="not.a.token")
            raw = channel.unary_unary(
                "/keikotest.demo.v1.DemoService/PublicEcho",
                request_serializer=lambda b: b,
                response_deserializer=api.EchoResponse().parse,
            )
            calls: list[Callable[[], Awaitable[Any]]] = [
                lambda: user.echo(api.EchoRequest(text="hi", at=at)),  # noqa: B023
                lambda: user.echo(api.EchoRequest(text="")),  # noqa: B023
                lambda: anonymous.echo(api.EchoRequest(text="hi")),  # noqa: B023
                lambda: forged.echo(api.EchoRequest(text="hi")),  # noqa: B023
                lambda: user.echo(api.EchoRequest(text="forbidden")),  # noqa: B023
                lambda: user.echo(api.EchoRequest(text="missing")),  # noqa: B023
                lambda: user.echo(api.EchoRequest(text="slow down")),  # noqa: B023
                lambda: user.echo(api.EchoRequest(text="boom")),  # noqa: B023
                lambda: user.later(api.EchoRequest(text="x")),  # noqa: B023
                lambda: anonymous.public_echo(api.EchoRequest(text="p")),  # noqa: B023
                lambda: raw(b"\x0a\xff\xff\xff\xff"),  # noqa: B023  (undecodable)
                lambda: user.echo(api.EchoRequest(text="x" * 100_000)),  # noqa: B023  (over limits)
            ]
            results[name] = [await outcome(call()) for call in calls]
    assert results["local"] == results["grpc"]
    codes = [result[0] for result in results["grpc"]]
    assert codes == [
        "OK",
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNIMPLEMENTED,
        "OK",
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    assert results["local"][1][3] == [("text", "must not be empty")]
    # The rich status travels in the trailers (the gateway reads the field path there).
    assert [k for k, _ in results["local"][1][2]] == ["grpc-status-details-bin"]


async def test_a_deadline_ends_the_call_and_cancels_the_servicer(
    demo: tuple[ModuleType, bytes],  # noqa: F811
) -> None:
    api, descriptors = demo
    async with both_channels(api, descriptors) as (issuer, seen, channels):
        results = {}
        for name, channel in channels.items():
            user = stub(api.DemoServiceStub, channel, access_token=access_token(issuer, "ana"))
            seen.cancellation.clear()
            results[name] = await outcome(user.echo(api.EchoRequest(text="slow"), timeout=0.2))
            await asyncio.wait_for(seen.cancellation.wait(), 10)
    # gRPC's own wording varies with which side noticed first ("Deadline Exceeded",
    # "Stream removed (Deadline Exceeded)"); the code and the (empty) trailers do not.
    assert results["grpc"][0] == results["local"][0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert results["local"][1] == "Deadline Exceeded"
    assert results["local"][2:] == results["grpc"][2:] == ([], [])
    assert seen.cancelled == ["slow", "slow"]


async def test_a_caller_that_goes_away_cancels_the_servicer(
    demo: tuple[ModuleType, bytes],  # noqa: F811
) -> None:
    """A client that disconnects (its HTTP request's task is cancelled) cancels the call."""
    api, descriptors = demo
    async with both_channels(api, descriptors) as (issuer, seen, channels):
        for channel in channels.values():
            user = stub(api.DemoServiceStub, channel, access_token=access_token(issuer, "ana"))
            seen.started.clear()
            seen.cancellation.clear()
            caller = asyncio.create_task(user.echo(api.EchoRequest(text="slow")))
            await asyncio.wait_for(seen.started.wait(), 10)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            await asyncio.wait_for(seen.cancellation.wait(), 10)
    assert seen.cancelled == ["slow", "slow"]


async def test_streams_end_alike_and_a_reader_that_leaves_cancels_the_servicer(
    demo: tuple[ModuleType, bytes],  # noqa: F811
) -> None:
    api, descriptors = demo
    labels = ("keikotest.demo.v1.DemoService", "Count", "CANCELLED")
    async with both_channels(api, descriptors) as (issuer, seen, channels):
        ended: dict[str, Outcome] = {}
        for name, channel in channels.items():
            user = stub(api.DemoServiceStub, channel, access_token=access_token(issuer, "ana"))
            received = []

            async def read_all() -> None:
                async for message in user.count(api.EchoRequest(text="n")):  # noqa: B023
                    received.append(message.text)  # noqa: B023

            ended[name] = (*(await outcome(read_all()))[:2], tuple(received))

            seen.cancellation.clear()
            cancelled_before = GRPC_HANDLED.labels(*labels)._value.get()
            taken = []
            async for message in user.count(api.EchoRequest(text="forever")):
                taken.append(message.text)
                if len(taken) == 2:
                    break  # the subscriber leaves: the stub cancels its call
            assert taken == ["forever-0", "forever-1"]
            await asyncio.wait_for(seen.cancellation.wait(), 10)
            for _ in range(200):  # counted once the servicer's task has ended
                if GRPC_HANDLED.labels(*labels)._value.get() == cancelled_before + 1:
                    break
                await asyncio.sleep(0.025)
            assert GRPC_HANDLED.labels(*labels)._value.get() == cancelled_before + 1
    assert (
        ended["local"]
        == ended["grpc"]
        == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "stream closed by the domain",
            ("n-0", "n-1", "n-2"),
        )
    )
    assert seen.cancelled == ["forever", "forever"]


async def test_the_caller_address_is_the_loopback_or_what_it_forwards(
    demo: tuple[ModuleType, bytes],  # noqa: F811
) -> None:
    api, descriptors = demo
    async with both_channels(api, descriptors) as (_, seen, channels):
        for channel in channels.values():
            client = stub(api.DemoServiceStub, channel)
            await client.public_echo(api.EchoRequest(text="a"))
            await client.public_echo(
                api.EchoRequest(text="b"), metadata=[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]
            )
    assert seen.addresses == ["127.0.0.1", "203.0.113.9"] * 2


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


async def test_a_call_makes_the_same_client_and_server_spans(
    demo: tuple[ModuleType, bytes],  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    api, descriptors = demo
    async with both_channels(api, descriptors) as (issuer, _, channels):
        traces = {}
        for name, channel in channels.items():
            user = stub(api.DemoServiceStub, channel, access_token=access_token(issuer, "ana"))
            spans.clear()
            with tracing.span("caller"):
                await outcome(user.echo(api.EchoRequest(text="hi")))
                await outcome(user.echo(api.EchoRequest(text="missing")))
            for _ in range(200):  # the server span ends once its handler has returned
                if len(spans.get_finished_spans()) == 5:
                    break
                await asyncio.sleep(0.025)
            finished = list(spans.get_finished_spans())
            by_id = {s.context.span_id: s for s in finished}
            traces[name] = sorted(
                (
                    s.name,
                    s.kind.name,
                    by_id[s.parent.span_id].kind.name if s.parent else None,
                    s.status.status_code.name,
                    (s.attributes or {}).get("rpc.grpc.status_code"),
                    len({s.context.trace_id for s in finished}),
                )
                for s in finished
            )
    assert traces["local"] == traces["grpc"]
    assert [(t[0], t[1], t[2]) for t in traces["local"]] == [
        ("caller", "INTERNAL", None),
        *[("keikotest.demo.v1.DemoService/Echo", "CLIENT", "INTERNAL")] * 2,
        *[("keikotest.demo.v1.DemoService/Echo", "SERVER", "CLIENT")] * 2,
    ]


async def test_metadata_grpc_cannot_send_is_refused_in_process_too(
    demo: tuple[ModuleType, bytes],  # noqa: F811
) -> None:
    api, descriptors = demo
    bad = [[("x-note", "é")], [("X-Upper", "v")], [("x-note", "a\nb")], [("x-bin", "text")]]
    async with both_channels(api, descriptors) as (_, seen, channels):
        refused: dict[str, list[bool]] = {}
        for name, channel in channels.items():
            client = stub(api.DemoServiceStub, channel)
            refused[name] = []
            for metadata in bad:
                with pytest.raises(Exception) as caught:  # gRPC's own error is internal
                    await client.public_echo(api.EchoRequest(text="x"), metadata=metadata)
                refused[name].append(isinstance(caught.value, grpc.aio.AioRpcError))
    assert refused == {"grpc": [False] * 4, "local": [False] * 4}
    assert seen.addresses == []  # nothing reached the servicer
