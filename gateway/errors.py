"""gRPC statuses to GraphQL errors with stable `extensions.code`s.

Client mistakes keep their message and code (and the offending field for bad input);
anything else is masked by the schema's MaskErrors extension, so no internal detail
reaches a client.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc
from graphql import GraphQLError

from services.kit.grpc.errors import field_violations

T = TypeVar("T")

CODES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "BAD_USER_INPUT",
    grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
    grpc.StatusCode.PERMISSION_DENIED: "FORBIDDEN",
    grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
    grpc.StatusCode.ALREADY_EXISTS: "CONFLICT",
    grpc.StatusCode.FAILED_PRECONDITION: "FAILED_PRECONDITION",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RATE_LIMITED",
    grpc.StatusCode.UNIMPLEMENTED: "NOT_IMPLEMENTED",
    grpc.StatusCode.UNAVAILABLE: "SERVICE_UNAVAILABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "TIMEOUT",
}


class ClientError(GraphQLError):
    """An error the client caused or can act on; never masked."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def from_rpc_error(error: grpc.aio.AioRpcError) -> Exception:
    code = CODES.get(error.code())
    if code is None:
        return error  # INTERNAL, UNKNOWN...: masked by the schema
    extensions: dict[str, Any] = {}
    violations = field_violations(error)
    if violations:
        extensions["field"] = violations[0][0]
        extensions["violations"] = [{"field": f, "reason": r} for f, r in violations]
    return ClientError(error.details() or code.lower(), code, **extensions)


async def rpc(call: Awaitable[T]) -> T:
    """Await a gRPC call, turning its status into a GraphQL error a client understands."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error


def should_mask(error: GraphQLError) -> bool:
    """Mask everything except client errors and GraphQL's own validation errors."""
    if isinstance(error, ClientError) or isinstance(error.original_error, ClientError):
        return False
    return error.original_error is not None


async def rpc_stream(stream: AsyncIterable[T]) -> AsyncIterator[T]:
    """Iterate a gRPC server stream, translating its final status like `rpc`."""
    try:
        async for message in stream:
            yield message
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error
    finally:
        cancel = getattr(stream, "cancel", None)
        if cancel is not None:
            cancel()
