"""Domain errors. Each maps to exactly one gRPC status (see services.kit.grpc.errors).

Domain code raises these; servicers never build gRPC statuses by hand. Anything else
that escapes a handler is a bug on our side and becomes INTERNAL with a masked message.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client may cause or needs to react to."""

    code: str = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """Bad input. `field` is the path of the offending field, e.g. `statement.actor.mbox`."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    """A conflicting write: the object exists or the slot is taken."""

    code = "ALREADY_EXISTS"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class FailedPrecondition(DomainError):
    """The request is valid but the object is not in a state that allows it."""

    code = "FAILED_PRECONDITION"


class RateLimited(DomainError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency (chain node, database) is down; the client may retry."""

    code = "UNAVAILABLE"
