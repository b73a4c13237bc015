"""Every operation a client can call, read from the contracts themselves: the GraphQL
schema (`graphql/schema.graphql`: each field of Query, Mutation and Subscription) and the
protobuf descriptor set (`services/api/descriptors.binpb`: each method of each keiko
service). The authorization matrix must have rows for exactly these."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from graphql import GraphQLSchema, build_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "graphql" / "schema.graphql"
DESCRIPTOR_SET_PATH = ROOT / "services" / "api" / "descriptors.binpb"


class Kind(enum.StrEnum):
    QUERY = "Query"
    MUTATION = "Mutation"
    SUBSCRIPTION = "Subscription"
    UNARY = "unary"
    SERVER_STREAM = "stream"


@dataclass(frozen=True)
class Operation:
    """`key` is how the table names it: `Query.user`, `Mutation.createSpace`,
    `Subscription.reservationChanged`, or `<Service>/<Method>` for gRPC
    (`MarketplaceService/CancelReservation`; service names are unique across packages)."""

    key: str
    kind: Kind
    # gRPC only: the full method path and the request/response message names.
    path: str = ""
    request_type: str = ""
    response_type: str = ""

    @property
    def is_graphql(self) -> bool:
        return self.kind in (Kind.QUERY, Kind.MUTATION, Kind.SUBSCRIPTION)

    @property
    def is_stream(self) -> bool:
        return self.kind in (Kind.SUBSCRIPTION, Kind.SERVER_STREAM)

    @property
    def field(self) -> str:
        """The GraphQL root field (or the gRPC method name)."""
        return self.key.rpartition(".")[2] if self.is_graphql else self.key.rpartition("/")[2]


@cache
def graphql_schema() -> GraphQLSchema:
    return build_schema(SCHEMA_PATH.read_text())


@cache
def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET_PATH.read_bytes())


@cache
def pool() -> descriptor_pool.DescriptorPool:
    built = descriptor_pool.DescriptorPool()
    for file in descriptor_set().file:
        built.Add(file)
    return built


def graphql_operations() -> list[Operation]:
    schema = graphql_schema()
    out = []
    for kind, root in (
        (Kind.QUERY, schema.query_type),
        (Kind.MUTATION, schema.mutation_type),
        (Kind.SUBSCRIPTION, schema.subscription_type),
    ):
        if root is not None:
            out += [Operation(f"{kind.value}.{name}", kind) for name in root.fields]
    return out


def grpc_operations() -> list[Operation]:
    out = []
    for file in descriptor_set().file:
        if not file.package.startswith("keiko."):
            continue
        for service in file.service:
            for method in service.method:
                if method.client_streaming:
                    raise AssertionError(
                        f"{service.name}/{method.name}: client streams unsupported"
                    )
                out.append(
                    Operation(
                        f"{service.name}/{method.name}",
                        Kind.SERVER_STREAM if method.server_streaming else Kind.UNARY,
                        path=f"/{file.package}.{service.name}/{method.name}",
                        request_type=method.input_type.lstrip("."),
                        response_type=method.output_type.lstrip("."),
                    )
                )
    return out


def all_operations() -> dict[str, Operation]:
    ops = graphql_operations() + grpc_operations()
    keyed = {op.key: op for op in ops}
    if len(keyed) != len(ops):
        raise AssertionError("two operations share a key: qualify gRPC keys by package")
    return keyed
