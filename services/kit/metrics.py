"""Prometheus metrics shared by the gRPC host and the GraphQL gateway."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GRPC_HANDLED = Counter(
    "keiko_grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "keiko_grpc_server_handling_seconds",
    "Time to handle an RPC (for streams: until the stream ends).",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "keiko_graphql_operations_total",
    "GraphQL operations executed, by outcome.",
    ["operation", "type", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "keiko_graphql_operation_seconds",
    "Time to execute a GraphQL operation.",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
