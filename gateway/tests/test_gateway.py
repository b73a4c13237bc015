"""The gateway's own behaviour: ops endpoints, limits, error codes, subscriptions."""

from __future__ import annotations

import asyncio
import json

from grpc_health.v1 import health_pb2
from websockets.asyncio.client import connect

from gateway.tests.conftest import GatewayFactory


async def test_healthz_readyz_and_metrics(live_gateway: GatewayFactory) -> None:
    async with live_gateway() as gw:
        assert (await gw.http.get("/healthz")).json() == {"status": "ok"}
        ready = await gw.http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "serving"})

        await gw.graphql("query Me { me { id } }")
        metrics = (await gw.http.get("/metrics")).text
        assert (
            'keiko_graphql_operations_total{operation="Me",outcome="error",type="query"}' in metrics
        )

        await gw.host.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        not_ready = await gw.http.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, {"status": "not_serving"})


async def test_readyz_when_services_are_unreachable(live_gateway: GatewayFactory) -> None:
    async with live_gateway() as gw:
        await gw.host.stop(grace=0)
        response = await gw.http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "reason": "UNAVAILABLE"}


async def test_me_without_credentials_is_unauthenticated(live_gateway: GatewayFactory) -> None:
    async with live_gateway() as gw:
        result = await gw.graphql("{ me { id } }")
        assert result["data"] is None
        [error] = result["errors"]
        assert error["message"] == "authentication required"
        assert error["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_query_depth_is_limited(live_gateway: GatewayFactory) -> None:
    async with live_gateway(graphql_max_depth=1) as gw:
        result = await gw.graphql("query Deep { me { profile { bio } } }")
        [error] = result["errors"]
        assert error["message"] == "'Deep' exceeds maximum operation depth of 1"


async def test_aliases_are_limited(live_gateway: GatewayFactory) -> None:
    async with live_gateway(graphql_max_aliases=3) as gw:
        aliases = " ".join(f"a{i}: me {{ id }}" for i in range(4))
        result = await gw.graphql(f"{{ {aliases} }}")
        [error] = result["errors"]
        assert "4 aliases found. Allowed: 3" in error["message"]


async def test_graphiql_is_served_to_browsers(live_gateway: GatewayFactory) -> None:
    async with live_gateway() as gw:
        page = await gw.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_service_health_subscription_over_graphql_transport_ws(
    live_gateway: GatewayFactory,
) -> None:
    async with (
        live_gateway() as gw,
        connect(gw.ws_url, subprotocols=["graphql-transport-ws"]) as ws,  # type: ignore[list-item]
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { serviceHealth { service status } }"},
                }
            )
        )

        async def next_status() -> str:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "next":
                    return str(message["payload"]["data"]["serviceHealth"]["status"])

        assert await next_status() == "SERVING"
        await gw.host.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await next_status() == "NOT_SERVING"
        await ws.send(json.dumps({"id": "1", "type": "complete"}))


async def test_cors_allows_only_the_configured_origins(live_gateway: GatewayFactory) -> None:
    """KEIKO_CORS_ORIGINS: a web app on another origin may call /graphql (preflight and
    the call itself); any other origin gets no CORS grant."""
    app_origin = "http://app.example:5173"
    preflight_headers = {
        "origin": app_origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with live_gateway(cors_origins=[app_origin]) as gw:
        preflight = await gw.http.options("/graphql", headers=preflight_headers)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == app_origin
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        call = await gw.http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": app_origin}
        )
        assert call.headers["access-control-allow-origin"] == app_origin
        assert call.json() == {"data": {"__typename": "Query"}}

        other = await gw.http.options(
            "/graphql", headers={**preflight_headers, "origin": "http://evil.example"}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers

    async with live_gateway() as gw:  # none configured: no CORS at all
        preflight = await gw.http.options("/graphql", headers=preflight_headers)
        assert "access-control-allow-origin" not in preflight.headers


async def test_graphiql_and_the_web_app_load_from_keiko_alone(
    live_gateway: GatewayFactory,
) -> None:
    """GraphiQL's page names no CDN: each script and style is served here, byte for byte
    the published file its integrity hash names."""
    import base64
    import hashlib
    import re

    async with live_gateway() as gw:
        page = await gw.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert not re.search(r"""(src|href)=["']https?://""", page.text)
        assets = re.findall(
            r'(?:src|href)="(/static/graphiql/[^"]+)"\s+integrity="([^"]+)"', page.text
        )
        assert len(assets) == 7, assets
        for path, integrity in assets:
            body = (await gw.http.get(path)).content
            digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
            assert integrity == f"sha384-{digest}", path

        app = await gw.http.get("/app")
        assert app.status_code == 200 and 'id="signup"' in app.text
        for path in re.findall(r'(?:src|href)="(/static/app/[^"]+)"', app.text):
            assert (await gw.http.get(path)).status_code == 200, path
        home = await gw.http.get("/", follow_redirects=False)
        assert (home.status_code, home.headers["location"]) == (307, "/app")
