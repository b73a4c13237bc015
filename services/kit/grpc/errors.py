"""Domain errors to gRPC statuses, using the standard rich error model.

A ValidationError carries its field path twice: in the status message ("email: ...")
for humans, and as a google.rpc.BadRequest field violation in `grpc-status-details-bin`
for programs (the GraphQL gateway reads it to build its error extensions).

Every status a Keiko servicer sends on purpose carries that rich status (even with no
details), so a client can tell a servicer's answer from one gRPC made up on its own
("Stream removed", "failed to connect to all addresses", "Received message larger than
max"): see :func:`servicer_status`. Those transport messages are internals and never
reach an end user. A RateLimited error adds a google.rpc.ErrorInfo with reason
``RATE_LIMITED``, the only RESOURCE_EXHAUSTED that means "slow down".
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.kit import errors

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}
ERROR_DOMAIN = "keiko.network"
RATE_LIMITED_REASON = "RATE_LIMITED"
# Status messages travel in trailers, which gRPC caps (8 KiB by default): a message that
# echoes a long client value must not turn the answer into a transport error.
MAX_STATUS_MESSAGE_CHARS = 1024


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.FAILED_PRECONDITION


def _clip(text: str) -> str:
    if len(text) <= MAX_STATUS_MESSAGE_CHARS:
        return text
    return text[: MAX_STATUS_MESSAGE_CHARS - 1] + "…"


def to_grpc_status(error: errors.DomainError) -> grpc.Status:
    code = status_code_for(error)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=_clip(error.message))
    detail = any_pb2.Any()
    if isinstance(error, errors.ValidationError):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(error.field), description=_clip(error.reason)
        )
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status.details.append(detail)
    elif isinstance(error, errors.RateLimited):
        detail.Pack(error_details_pb2.ErrorInfo(reason=RATE_LIMITED_REASON, domain=ERROR_DOMAIN))
        status.details.append(detail)
    return rpc_status.to_status(status)


def servicer_status(rpc_error: grpc.aio.AioRpcError | grpc.RpcError) -> status_pb2.Status | None:
    """The rich status a Keiko servicer attached, or None when gRPC itself produced the
    error (or the trailer is unreadable: e.g. its code disagrees with the call's)."""
    try:
        return rpc_status.from_call(rpc_error)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return None


def field_violations(rpc_error: grpc.aio.AioRpcError | grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) pairs a server attached to an INVALID_ARGUMENT error."""
    status = servicer_status(rpc_error)
    if status is None:
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found


def is_rate_limited(rpc_error: grpc.aio.AioRpcError | grpc.RpcError) -> bool:
    """True only for a servicer's RateLimited answer (not a transport size limit)."""
    status = servicer_status(rpc_error)
    if status is None:
        return False
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason == RATE_LIMITED_REASON:
                return True
    return False
