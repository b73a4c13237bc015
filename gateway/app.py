"""The gateway's ASGI app: /graphql (HTTP, GraphiQL, graphql-transport-ws), /healthz,
/readyz, Prometheus /metrics, the web app at /app and the static files under /static.
Scripts of the origins in ``cors_origins`` (KEIKO_CORS_ORIGINS) may call it (CORS)."""

from __future__ import annotations

from typing import Any

import grpc
import strawberry
from cross_web import HTTPException
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
from gateway.credentials_api import credential_routes
from gateway.graphiql import STATIC_DIR, offline_graphiql_html
from gateway.http import RequestLimits, request_id_or_none
from gateway.openapi import openapi_route
from gateway.schema.humanity import MAX_MULTIPART_BYTES
from gateway.shared_streams import SharedStreams
from gateway.tracing import HttpTracing
from gateway.uploads import InMemoryUploadRequestAdapter
from gateway.verify_page import verify_routes
from gateway.web_app import app_routes
from gateway.webhooks import webhook_routes
from gateway.ws_sharing import PreEncoded, SharedTransportWSHandler
from gateway.xapi import xapi_routes
from gateway.xapi.http import MAX_BODY_BYTES, MAX_STATEMENTS_BODY_BYTES
from services.kit import tracing
from services.kit.auth import TokenVerifier, bearer_token
from services.kit.clock import Clock
from services.kit.errors import Unauthenticated
from services.kit.grpc.client import RoutedChannel
from services.kit.grpc.local import LocalChannel
from services.kit.jsonlimits import JsonRefused, loads_limited

MAX_GRAPHQL_JSON_BYTES = 1024 * 1024
# Body limits by path prefix (others: gateway.http.DEFAULT_MAX_BODY_BYTES). GraphQL
# carries the proof-of-humanity multipart upload; xAPI and webhooks their own 5 MiB,
# xAPI statements 5 MiB of JSON plus an attachment part (16 MiB).
BODY_LIMITS = {
    "/graphql": MAX_MULTIPART_BYTES,
    "/xapi/statements": MAX_STATEMENTS_BODY_BYTES,
    "/xapi/": MAX_BODY_BYTES,
    "/webhooks/": 5 * 1024 * 1024,
}


class KeikoGraphQL(GraphQL[GatewayContext, None]):
    """Builds each request's context; WebSocket clients authenticate in connection_init
    with `{"Authorization": "Bearer <token>"}` (or `authToken`).
    ---
    get:
      summary: GraphiQL (a browser), or a query in the query string
      tags: [graphql]
      parameters:
        - {name: query, in: query, schema: {type: string}}
        - {name: variables, in: query, description: a JSON object, schema: {type: string}}
        - {name: operationName, in: query, schema: {type: string}}
      responses:
        200: {description: "GraphiQL, or the result (errors carry extensions.code)"}
        400: {description: "a malformed request, with the reason"}
    post:
      summary: A GraphQL operation (schema by introspection, graphql/schema.graphql)
      tags: [graphql]
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [query]
              properties:
                query: {type: string}
                variables: {type: object}
                operationName: {type: string}
      responses:
        200: {description: the result (errors carry extensions.code)}
        400: {description: "a malformed body, with the reason"}
        413: {description: a body over the limit}
    """

    # Multipart uploads (proof of humanity) are parsed in memory, never spilled to disk.
    request_adapter_class = InMemoryUploadRequestAdapter
    # A caller's identical subscriptions run and are encoded once (gateway.ws_sharing).
    graphql_transport_ws_handler_class = SharedTransportWSHandler

    def __init__(
        self,
        schema: strawberry.Schema,
        channel: grpc.aio.Channel,
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            multipart_uploads_enabled=True,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            keep_alive=True,
            keep_alive_interval=15,
        )
        self.channel = channel
        self.token_verifier = token_verifier
        # Subscriptions share upstream streams only where a joiner's token can be checked.
        self.streams = SharedStreams(token_verifier) if token_verifier is not None else None

    def is_authenticated(self, authorization: str | None) -> bool:
        """A valid access token (without a verifier: any credentials at all)."""
        if not authorization:
            return False
        if self.token_verifier is None:
            return True
        try:
            self.token_verifier.verify(bearer_token(authorization))
        except Unauthenticated:
            return False
        return True

    def decode_json(self, data: str | bytes) -> object:
        """Bodies and `variables`/`extensions` query parameters: UTF-8 JSON objects within
        the size and depth limits, else 400/413 with the reason."""
        if len(data) > MAX_GRAPHQL_JSON_BYTES:
            raise HTTPException(413, f"body larger than {MAX_GRAPHQL_JSON_BYTES} bytes")
        try:
            decoded = loads_limited(data)
        except JsonRefused as refused:
            raise HTTPException(400, refused.reason) from None
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "the body must be a JSON object")
        return decoded

    def encode_json(self, data: object) -> str | bytes:
        if isinstance(data, PreEncoded):
            return data.text
        return super().encode_json(data)

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
            authenticated=self.is_authenticated(authorization),
            request_id=request_id_or_none(request.headers.get("x-request-id"))
            or GatewayContext.new_request_id(),
            user_agent=request.headers.get("user-agent", "")[:256],
            client_address=request.client.host if request.client else "",
            request=request,
            response=response,
            streams=self.streams,
        )

    async def on_ws_connect(self, context: GatewayContext) -> Any:
        params = getattr(context, "connection_params", None) or {}
        raw = params.get("Authorization") or params.get("authorization")
        token = params.get("authToken")
        if raw:
            context.authorization = str(raw)
        elif token:
            context.authorization = f"Bearer {token}"
        context.authenticated = self.is_authenticated(context.authorization)
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
    token_verifier: TokenVerifier | None = None,
) -> Starlette:
    graphql_app = KeikoGraphQL(schema, channel, token_verifier)
    # Services that run apart (replicas) each have their channel: every one must serve.
    channels = (
        channel.channels() if isinstance(channel, (RoutedChannel, LocalChannel)) else [channel]
    )
    healths = [health_pb2_grpc.HealthStub(c) for c in channels]

    async def healthz(_: Request) -> Response:
        """
        ---
        summary: Liveness of the gateway process
        tags: [health]
        responses:
          200: {description: "{status: ok}"}
        """
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        """Ready when the gRPC services behind the gateway report SERVING.
        ---
        summary: Readiness (the gRPC services behind the gateway report SERVING)
        tags: [health]
        responses:
          200: {description: "{status: serving}"}
          503: {description: "{status, reason}: not serving yet"}
        """
        for health in healths:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.aio.AioRpcError as error:
                return JSONResponse(
                    {"status": "unavailable", "reason": error.code().name}, status_code=503
                )
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                return JSONResponse({"status": status.lower()}, status_code=503)
        return JSONResponse({"status": "serving"})

    async def metrics(_: Request) -> Response:
        """
        ---
        summary: Prometheus metrics
        tags: [health]
        responses:
          200: {description: the Prometheus text format}
        """
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        # CORS answers preflights first; then the URL and body limits of docs/limits.md,
        # before any route reads the request.
        middleware=[
            *([Middleware(HttpTracing)] if tracing.enabled() else []),
            *cors_middleware(cors_origins or []),
            Middleware(RequestLimits, body_limits=BODY_LIMITS),
        ],
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            openapi_route(lambda: app.routes),
            *xapi_routes(channel, clock=clock),
            *webhook_routes(channel),
            *credential_routes(channel),
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
    return app


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
