"""The one bridge between betterproto's generated services and grpcio.

betterproto generates grpclib-flavoured `ServiceBase` classes. Their `__mapping__()`
already lists every RPC with its cardinality and message types, so we read it once and
build grpcio method handlers that (de)serialize betterproto messages and call the
servicer's own coroutine. RPCs the servicer does not override answer UNIMPLEMENTED
with a message naming the method, instead of grpclib's error type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import betterproto
import grpc
from betterproto.grpc.grpclib_server import ServiceBase
from grpclib.const import Cardinality

from services.kit import limits
from services.kit.errors import ValidationError


@dataclass(frozen=True)
class RpcMethod:
    """One RPC of a hosted service."""

    full_name: str  # "/keiko.identity.v1.IdentityService/GetUser"
    service: str  # "keiko.identity.v1.IdentityService"
    name: str  # "GetUser"
    attribute: str  # "get_user": the servicer coroutine
    cardinality: Cardinality
    request_type: type[betterproto.Message]
    response_type: type[betterproto.Message]
    implemented: bool


def describe(servicer: ServiceBase) -> list[RpcMethod]:
    """Every RPC of a betterproto servicer, from its generated `__mapping__`."""
    methods = []
    for full_name, handler in servicer.__mapping__().items():  # type: ignore[attr-defined]
        service, name = full_name.lstrip("/").split("/")
        # The generated wrapper is named `__rpc_<attribute>` (name-mangled), which gives
        # the exact Python name betterproto chose for the servicer coroutine.
        attribute = handler.func.__name__.split("__rpc_", 1)[1]
        methods.append(
            RpcMethod(
                full_name=full_name,
                service=service,
                name=name,
                attribute=attribute,
                cardinality=handler.cardinality,
                request_type=handler.request_type,
                response_type=handler.reply_type,
                implemented=_overrides(servicer, attribute),
            )
        )
    return methods


def _overrides(servicer: ServiceBase, attribute: str) -> bool:
    """True when a class below the generated Base defines the RPC coroutine."""
    for cls in type(servicer).__mro__:
        if attribute in cls.__dict__:
            # The generated Base is the first class whose module holds `__mapping__`.
            return "__mapping__" not in cls.__dict__
    return False


def service_names(servicer: ServiceBase) -> set[str]:
    return {method.service for method in describe(servicer)}


def method_handlers(servicer: ServiceBase) -> dict[str, grpc.RpcMethodHandler]:
    """grpcio handlers for every RPC of `servicer`, by full method name."""
    return {method.full_name: _method_handler(servicer, method) for method in describe(servicer)}


def generic_handlers(servicer: ServiceBase) -> list[grpc.GenericRpcHandler]:
    """grpcio handlers for every RPC of `servicer`, one generic handler per service."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for full_name, handler in method_handlers(servicer).items():
        service, name = full_name.lstrip("/").split("/")
        by_service.setdefault(service, {})[name] = handler
    return [grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items()]


def _method_handler(servicer: ServiceBase, method: RpcMethod) -> grpc.RpcMethodHandler:
    request_type = method.request_type

    def deserialize(data: bytes) -> betterproto.Message | MalformedRequest:
        # A deserializer exception would surface as INTERNAL; the client sent bad bytes.
        try:
            message = request_type().parse(data)
        except Exception as exc:
            return MalformedRequest("request", f"cannot decode {request_type.__name__}: {exc}")
        # Every input's limit (services.kit.limits), once, for every service and caller.
        violation = limits.first_violation(message)
        if violation is not None:
            return MalformedRequest(violation.field, violation.reason)
        return message

    def serialize(message: betterproto.Message) -> bytes:
        return bytes(message)

    if method.cardinality is Cardinality.UNARY_UNARY:
        return grpc.unary_unary_rpc_method_handler(
            _unary(servicer, method),
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
    if method.cardinality is Cardinality.UNARY_STREAM:
        return grpc.unary_stream_rpc_method_handler(
            _server_stream(servicer, method),
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
    raise ValueError(f"{method.full_name}: client streaming is not used by Keiko's contracts")


UnaryBehaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehaviour = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def _unary(servicer: ServiceBase, method: RpcMethod) -> UnaryBehaviour:
    if not method.implemented:

        async def unimplemented(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, _unimplemented_message(method))

        return unimplemented
    call = getattr(servicer, method.attribute)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await call(_decoded(request))

    return unary


def _server_stream(servicer: ServiceBase, method: RpcMethod) -> StreamBehaviour:
    if not method.implemented:

        async def unimplemented(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, _unimplemented_message(method))
            yield  # pragma: no cover - makes this an async generator

        return unimplemented
    call = getattr(servicer, method.attribute)

    async def server_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for response in call(_decoded(request)):
            yield response

    return server_stream


@dataclass(frozen=True)
class MalformedRequest:
    field: str
    reason: str


def _decoded(request: Any) -> Any:
    if isinstance(request, MalformedRequest):
        raise ValidationError(request.field, request.reason)
    return request


def _unimplemented_message(method: RpcMethod) -> str:
    return f"{method.service}.{method.name} is not implemented in this Keiko release"
