"""Schema extensions: masked internal errors (with a code), limits, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import structlog
from graphql import GraphQLError, OperationType
from strawberry.extensions import MaskErrors, SchemaExtension

from gateway.errors import should_mask
from services.kit.metrics import GRAPHQL_LATENCY, GRAPHQL_OPERATIONS

log = structlog.get_logger("keiko.gateway")


class MaskInternalErrors(MaskErrors):
    """Client errors pass; anything else becomes 'Internal server error.' with a code,
    and the original is logged so operators can find it by request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        log.error("graphql resolver failed", path=error.path, error=repr(error.original_error))
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class OperationMetrics(SchemaExtension):
    """Per-operation counts and latency for Prometheus."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        result = self.execution_context.result
        name = self.execution_context.operation_name or "anonymous"
        try:
            kind = self.execution_context.operation_type.value
        except RuntimeError:  # the document did not parse: no operation type
            kind = "invalid"
        if kind == OperationType.SUBSCRIPTION.value:
            return  # subscriptions are long-lived; their latency means nothing
        outcome = "error" if result is None or result.errors else "ok"
        GRAPHQL_OPERATIONS.labels(name, kind, outcome).inc()
        GRAPHQL_LATENCY.labels(name, kind).observe(time.perf_counter() - started)
