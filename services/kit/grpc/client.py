"""Typed async clients: betterproto's generated stubs, carried by a grpcio channel.

The generated `<Name>ServiceStub` classes give every RPC a typed coroutine but talk
grpclib. `stub()` subclasses one with a transport that sends the same calls over a
grpc.aio channel, so callers keep the generated signatures and types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import betterproto
import grpc

from services.kit import limits, tracing
from services.kit.grpc.errors import to_grpc_status

StubT = TypeVar("StubT", bound=betterproto.ServiceStub)
MetadataProvider = Callable[[], list[tuple[str, str]]]


def _refuse_over_limits(request: betterproto.Message) -> None:
    """The server would refuse a request over its limits (services.kit.limits): refuse
    it here with the very error the server would send, without sending it. This also
    covers text protobuf cannot encode (lone surrogates), which would otherwise fail
    inside grpc's serializer as an opaque INTERNAL."""
    violation = limits.first_violation(request)
    if violation is None:
        return
    status = to_grpc_status(violation)
    raise grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )


class _GrpcioTransport:
    """Overrides betterproto's grpclib calls with grpc.aio calls on `self.channel`."""

    channel: grpc.aio.Channel
    _metadata_provider: MetadataProvider | None
    _default_timeout: float | None

    def _call_metadata(self, metadata: Any) -> list[tuple[str, str]]:
        merged = list(self._metadata_provider() if self._metadata_provider else [])
        if metadata:
            merged.extend(metadata.items() if isinstance(metadata, dict) else metadata)
        if tracing.enabled():
            carrier: dict[str, str] = {}
            tracing.inject(carrier)  # the caller's span (the CLIENT span of a unary call)
            merged.extend(carrier.items())
        return merged

    async def _unary_unary(
        self,
        route: str,
        request: betterproto.Message,
        response_type: type[betterproto.Message],
        *,
        timeout: float | None = None,
        deadline: Any = None,
        metadata: Any = None,
    ) -> Any:
        _refuse_over_limits(request)
        call = self.channel.unary_unary(
            route,
            request_serializer=bytes,
            response_deserializer=lambda data: response_type().parse(data),
        )
        if not tracing.enabled():
            return await call(
                request,
                timeout=timeout if timeout is not None else self._default_timeout,
                metadata=self._call_metadata(metadata),
            )
        service, _, method = route.lstrip("/").rpartition("/")
        with tracing.span(
            f"{service}/{method}",
            tracing.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        ) as span:
            try:
                return await call(
                    request,
                    timeout=timeout if timeout is not None else self._default_timeout,
                    metadata=self._call_metadata(metadata),
                )
            except grpc.aio.AioRpcError as error:
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", error.code().value[0])
                tracing.set_error(span, error.code().name)
                raise

    async def _unary_stream(
        self,
        route: str,
        request: betterproto.Message,
        response_type: type[betterproto.Message],
        *,
        timeout: float | None = None,
        deadline: Any = None,
        metadata: Any = None,
    ) -> AsyncIterator[Any]:
        _refuse_over_limits(request)
        call = self.channel.unary_stream(
            route,
            request_serializer=bytes,
            response_deserializer=lambda data: response_type().parse(data),
        )
        stream = call(request, timeout=timeout, metadata=self._call_metadata(metadata))
        try:
            async for response in stream:
                yield response
        finally:
            stream.cancel()


_stub_classes: dict[type, type] = {}


def stub(
    stub_class: type[StubT],
    channel: grpc.aio.Channel,
    *,
    access_token: str | None = None,
    metadata: MetadataProvider | None = None,
    timeout: float | None = 30.0,
) -> StubT:
    """A typed client of one service. `metadata` is called per RPC (e.g. to forward the
    caller's token and request id); `access_token` is the common fixed-token case."""
    if access_token is not None and metadata is not None:
        raise ValueError("give either access_token or metadata, not both")
    if access_token is not None:
        fixed = [("authorization", f"Bearer {access_token}")]

        def metadata() -> list[tuple[str, str]]:
            return fixed

    cls = _stub_classes.get(stub_class)
    if cls is None:
        cls = type(f"Grpcio{stub_class.__name__}", (_GrpcioTransport, stub_class), {})
        _stub_classes[stub_class] = cls
    # Bypass ServiceStub.__init__, which expects a grpclib channel.
    instance: Any = object.__new__(cls)
    instance.channel = channel
    instance.timeout = timeout
    instance.deadline = None
    instance.metadata = None
    instance._metadata_provider = metadata
    instance._default_timeout = timeout
    return instance  # type: ignore[no-any-return]


# One message-size limit for every Keiko server and client (docs/limits.md): page sizes
# and field limits are chosen so that no valid request produces a larger response (the
# largest page of the largest records, measured by tests/test_hostile_input.py).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


# Replicas are balanced round robin over the addresses whose connection is up and whose
# grpc.health.v1 Watch says SERVING (the whole server, service ""): a replica that dies
# is skipped as soon as its connection drops, one that drains (health NOT_SERVING at
# shutdown) as soon as it says so, and both come back when they serve again.
REPLICA_SERVICE_CONFIG = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
)


def channel_target(target: str) -> tuple[str, list[tuple[str, Any]]]:
    """A gRPC target and its options. `target` is host:port, or a comma list of IPv4
    host:port (service replicas): those are balanced round robin with health checking
    (REPLICA_SERVICE_CONFIG)."""
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) <= 1:
        return target.strip(), []
    return "ipv4:" + ",".join(addresses), [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.service_config", REPLICA_SERVICE_CONFIG),
    ]


class UnaryDeadline(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Every unary call on the channel ends within `seconds` (or its own shorter timeout);
    past it the call fails DEADLINE_EXCEEDED, which clients are told as TIMEOUT. Server
    streams (subscriptions) are long-lived by design and keep their own terms."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = client_call_details.timeout
        if timeout is None or timeout > self.seconds:
            client_call_details = client_call_details._replace(timeout=self.seconds)
        return await continuation(client_call_details, request)


def open_channel(target: str, *, deadline_seconds: float | None = None) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `target` (see channel_target) with Keiko's message
    size limits and, when given, a deadline on every unary call (UnaryDeadline)."""
    resolved, options = channel_target(target)
    return grpc.aio.insecure_channel(
        resolved,
        options=[*MESSAGE_SIZE_OPTIONS, *options],
        interceptors=[UnaryDeadline(deadline_seconds)] if deadline_seconds is not None else None,
    )


ChannelOpener = Callable[[str], grpc.aio.Channel]


def channel_opener(runtime: object) -> ChannelOpener:
    """How a service opens its channel to another (the chain translator): the runtime's
    `open_channel` when it has one (keiko.runtime's calls this process's own services in
    process), else open_channel."""
    opener: ChannelOpener | None = getattr(runtime, "open_channel", None)
    return opener or open_channel


class LazyChannel:
    """One channel to another service at ``target``, opened with ``connect`` on first use
    (services.kit's `channel_opener`: in process when that service is co-hosted) and closed
    by ``close()`` when it opened it; a ``channel`` given here stays the giver's."""

    def __init__(
        self,
        target: str,
        connect: ChannelOpener = open_channel,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.target = target
        self._connect = connect
        self._channel = channel
        self._owned = channel is None

    def stub(
        self,
        stub_class: type[StubT],
        *,
        access_token: str | None = None,
        timeout: float | None = 30.0,
    ) -> StubT:
        if self._channel is None:
            self._channel = self._connect(self.target)
        return stub(stub_class, self._channel, access_token=access_token, timeout=timeout)

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and self._owned:
            await channel.close()
        self._owned = True  # a channel opened after this is ours


def service_of(method: str) -> str:
    """The Keiko service a full method name belongs to: ``learning`` for
    ``/keiko.learning.v1.LearningService/RecordInteraction``; "" for any other."""
    package = method.lstrip("/").split("/", 1)[0].split(".")
    return package[1] if len(package) > 2 and package[0] == "keiko" else ""


class RoutedChannel(grpc.aio.Channel):
    """A grpc.aio.Channel for a caller of several services that run apart
    (each its own set of replicas): every call goes to the channel of the service its
    method belongs to, anything else (health, reflection) to the default channel."""

    def __init__(self, default: grpc.aio.Channel, by_service: dict[str, grpc.aio.Channel]) -> None:
        self.default = default
        self.by_service = dict(by_service)

    def channel_for(self, method: str) -> grpc.aio.Channel:
        return self.by_service.get(service_of(method), self.default)

    def channels(self) -> list[grpc.aio.Channel]:
        """Each distinct channel once, the default first."""
        out = [self.default]
        for channel in self.by_service.values():
            if all(channel is not seen for seen in out):
                out.append(channel)
        return out

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channel_for(method).unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channel_for(method).unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channel_for(method).stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channel_for(method).stream_stream(method, *args, **kwargs)

    async def channel_ready(self) -> None:
        for channel in self.channels():
            await channel.channel_ready()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.default.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.default.wait_for_state_change(last_observed_state)

    async def close(self, grace: float | None = None) -> None:
        for channel in self.channels():
            await channel.close(grace)

    async def __aenter__(self) -> RoutedChannel:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close(None)


def open_service_channel(
    default_target: str,
    service_targets: dict[str, str],
    *,
    deadline_seconds: float | None = None,
) -> grpc.aio.Channel:
    """One channel to `default_target`, or, when some services run elsewhere
    (`service_targets`, by service name), a RoutedChannel that sends each service's calls
    to its own target (one channel per distinct target); see open_channel."""
    default = open_channel(default_target, deadline_seconds=deadline_seconds)
    if not service_targets:
        return default
    opened: dict[str, grpc.aio.Channel] = {default_target: default}
    by_service = {}
    for service, target in service_targets.items():
        if target not in opened:
            opened[target] = open_channel(target, deadline_seconds=deadline_seconds)
        by_service[service] = opened[target]
    return RoutedChannel(default, by_service)
