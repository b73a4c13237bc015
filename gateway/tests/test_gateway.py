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
