"""Platform status over GraphQL: a subscription backed by gRPC health watching."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator

import strawberry
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.context import Info
from gateway.errors import rpc_stream


@strawberry.enum
class ServingStatus(enum.Enum):
    UNKNOWN = "UNKNOWN"
    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"
    SERVICE_UNKNOWN = "SERVICE_UNKNOWN"


@strawberry.type
class ServiceHealth:
    service: str
    status: ServingStatus


@strawberry.type
class SystemSubscription:
    @strawberry.subscription(
        description="Health of a backend gRPC service ('' = the whole platform), "
        "pushed on every change."
    )
    async def service_health(
        self, info: Info, service: str = ""
    ) -> AsyncGenerator[ServiceHealth, None]:
        health = health_pb2_grpc.HealthStub(info.context.channel)
        stream = health.Watch(health_pb2.HealthCheckRequest(service=service))
        async for reply in rpc_stream(stream):
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            yield ServiceHealth(service=service, status=ServingStatus[name])
