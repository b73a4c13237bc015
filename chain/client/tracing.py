"""JSON-RPC client spans (services.kit.tracing): one CLIENT span per call to the chain
node, named by its method (``starknet_addInvokeTransaction``), with the ``traceparent``
in the HTTP request's headers so a traced node can join the trace."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.http_client import RpcHttpClient

from services.kit import tracing


class TracedRpcHttpClient(RpcHttpClient):
    async def call(self, method_name: str, params: dict[str, Any] | None = None) -> Any:
        method = f"{self.method_prefix}_{method_name}"
        with tracing.span(
            method,
            tracing.SpanKind.CLIENT,
            attributes={"rpc.system": "jsonrpc", "rpc.method": method, "server.address": self.url},
        ):
            return await super().call(method_name, params)

    async def _make_request(
        self,
        session: ClientSession,
        address: str,
        http_method: Any,
        params: dict[str, Any],
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        tracing.inject(headers)
        async with session.request(
            method=http_method.value, url=address, params=params, json=payload, headers=headers
        ) as response:
            await self.handle_request_error(response)
            result: dict[str, Any] = await response.json(content_type=None)
            return result


def trace_client(client: FullNodeClient) -> FullNodeClient:
    """Give ``client`` traced JSON-RPC calls when tracing is on (off: left as it is)."""
    if tracing.enabled():
        inner: RpcHttpClient = client._client
        client._client = TracedRpcHttpClient(
            url=inner.url, session=inner.session, method_prefix=inner.method_prefix
        )
    return client
