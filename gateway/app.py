"""The gateway's ASGI app: /graphql (HTTP, GraphiQL, graphql-transport-ws), /healthz,
/readyz, Prometheus /metrics, the web app at /app and the static files under /static.
Scripts of the origins in ``cors_origins`` (KEIKO_CORS_ORIGINS) may call it (CORS)."""

from __future__ import annotations

from typing import Any

import grpc
import strawberry
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.context import GatewayContext
from gateway.graphiql import STATIC_DIR, offline_graphiql_html
from gateway.uploads import InMemoryUploadRequestAdapter
from gateway.verify_page import verify_routes
from gateway.web_app import app_routes
from gateway.webhooks import webhook_routes
from gateway.xapi import xapi_routes
from services.kit.clock import Clock


class KeikoGraphQL(GraphQL[GatewayContext, None]):
    """Builds each request's context; WebSocket clients authenticate in connection_init
    with `{"Authorization": "Bearer <token>"}` (or `authToken`)."""

    # Multipart uploads (proof of humanity) are parsed in memory, never spilled to disk.
    request_adapter_class = InMemoryUploadRequestAdapter

    def __init__(self, schema: strawberry.Schema, channel: grpc.aio.Channel) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            multipart_uploads_enabled=True,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            keep_alive=True,
            keep_alive_interval=15,
        )
        self.channel = channel

    @property
    def graphql_ide_html(self) -> str:
        return offline_graphiql_html()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        authorization = (
            request.headers.get("authorization") if isinstance(request, Request) else None
        )
        return GatewayContext(
            channel=self.channel,
            authorization=authorization,
            request_id=request.headers.get("x-request-id") or GatewayContext.new_request_id(),
            user_agent=request.headers.get("user-agent", "")[:256],
            client_address=request.client.host if request.client else "",
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: GatewayContext) -> Any:
        params = getattr(context, "connection_params", None) or {}
        raw = params.get("Authorization") or params.get("authorization")
        token = params.get("authToken")
        if raw:
            context.authorization = str(raw)
        elif token:
            context.authorization = f"Bearer {token}"
        return await super().on_ws_connect(context)


def create_app(
    schema: strawberry.Schema,
    channel: grpc.aio.Channel,
    *,
    clock: Clock | None = None,
    chain_rpc_url: str = "",
    public_base_url: str = "",
    explorer_tx_url: str = "",
    cors_origins: list[str] | None = None,
) -> Starlette:
    graphql_app = KeikoGraphQL(schema, channel)
    health = health_pb2_grpc.HealthStub(channel)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        """Ready when the gRPC services behind the gateway report SERVING."""
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.aio.AioRpcError as error:
            return JSONResponse(
                {"status": "unavailable", "reason": error.code().name}, status_code=503
            )
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return JSONResponse({"status": status.lower()}, status_code=200 if serving else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        middleware=cors_middleware(cors_origins or []),
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *xapi_routes(channel, clock=clock),
            *webhook_routes(channel),
            *verify_routes(
                channel,
                chain_rpc_url=chain_rpc_url,
                explorer_tx_url=explorer_tx_url,
                public_base_url=public_base_url,
                clock=clock,
            ),
            *app_routes(),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
    )


# What browsers may send cross-origin: GraphQL, xAPI (its version header, Basic auth) and
# request ids. Credentials travel in headers, never cookies, so none are allowed.
CORS_HEADERS = [
    "authorization",
    "content-type",
    "x-request-id",
    "x-experience-api-version",
    "if-match",
    "if-none-match",
]


def cors_middleware(origins: list[str]) -> list[Middleware]:
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            expose_headers=["x-request-id", "x-experience-api-version", "etag", "last-modified"],
            allow_credentials=False,
            max_age=600,
        )
    ]
