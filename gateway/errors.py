"""gRPC statuses to client errors with stable codes, for GraphQL and the REST routes.

Client mistakes keep their message and code (and the offending field for bad input);
anything else is masked by the schema's MaskErrors extension (GraphQL) or answered as a
bare 500 (REST), so no internal detail reaches a client. A status that gRPC produced on
its own (no Keiko rich status: "Stream removed", "failed to connect to all addresses",
"Received message larger than max") never shows its text: it is our problem, reported
with a fixed message. RATE_LIMITED means a servicer's rate limit and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from graphql import GraphQLError

from services.kit.grpc.errors import field_violations, is_rate_limited, servicer_status

T = TypeVar("T")


@dataclass(frozen=True)
class RpcFailure:
    """What a client is told about a failed RPC."""

    code: str  # GraphQL extensions.code
    http_status: int
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)


# code -> (GraphQL code, HTTP status, message when gRPC itself made the status up)
_CLIENT_FACING: dict[grpc.StatusCode, tuple[str, int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ("BAD_USER_INPUT", 400, "invalid argument"),
    grpc.StatusCode.OUT_OF_RANGE: ("BAD_USER_INPUT", 400, "out of range"),
    grpc.StatusCode.UNAUTHENTICATED: ("UNAUTHENTICATED", 401, "authentication required"),
    grpc.StatusCode.PERMISSION_DENIED: ("FORBIDDEN", 403, "permission denied"),
    grpc.StatusCode.NOT_FOUND: ("NOT_FOUND", 404, "not found"),
    grpc.StatusCode.ALREADY_EXISTS: ("CONFLICT", 409, "already exists"),
    grpc.StatusCode.FAILED_PRECONDITION: ("FAILED_PRECONDITION", 400, "failed precondition"),
    grpc.StatusCode.UNIMPLEMENTED: ("NOT_IMPLEMENTED", 501, "not implemented"),
    grpc.StatusCode.UNAVAILABLE: (
        "SERVICE_UNAVAILABLE",
        503,
        "a backend service is unavailable; retry shortly",
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        "TIMEOUT",
        504,
        "the operation did not finish within its deadline",
    ),
}


def describe_rpc_error(error: grpc.aio.AioRpcError) -> RpcFailure | None:
    """The client-facing form of a failed RPC, or None when it is ours to fix (masked)."""
    code = error.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if is_rate_limited(error):
            return RpcFailure("RATE_LIMITED", 429, error.details() or "rate limited")
        return None  # a transport limit (message or metadata size): our bug, not theirs
    known = _CLIENT_FACING.get(code)
    if known is None:
        return None  # INTERNAL, UNKNOWN, CANCELLED, DATA_LOSS...
    graphql_code, http_status, fixed_message = known
    from_servicer = servicer_status(error) is not None or code in (
        grpc.StatusCode.UNIMPLEMENTED,  # the adapter's "X is not implemented" (no details)
    )
    if not from_servicer:
        return RpcFailure(graphql_code, http_status, fixed_message)
    return RpcFailure(
        graphql_code,
        http_status,
        error.details() or fixed_message,
        field_violations(error) if code == grpc.StatusCode.INVALID_ARGUMENT else [],
    )


class ClientError(GraphQLError):
    """An error the client caused or can act on; never masked."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


def from_rpc_error(error: grpc.aio.AioRpcError) -> Exception:
    failure = describe_rpc_error(error)
    if failure is None:
        return error  # masked by the schema
    extensions: dict[str, Any] = {}
    if failure.violations:
        extensions["field"] = failure.violations[0][0]
        extensions["violations"] = [{"field": f, "reason": r} for f, r in failure.violations]
    return ClientError(failure.message, failure.code, **extensions)


async def rpc(call: Awaitable[T]) -> T:
    """Await a gRPC call, turning its status into a GraphQL error a client understands."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error


def should_mask(error: GraphQLError) -> bool:
    """Mask everything except client errors and GraphQL's own request errors (parse,
    validation, variable coercion: those carry no original error, see gateway.requests)."""
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
