"""HTTP and WebSocket transport of the dev node: Starlette app served by uvicorn.

POST ``/`` or ``/rpc`` with a JSON-RPC 2.0 request or batch; the WebSocket API
(subscriptions, and any method) at ``/ws`` (:mod:`chain.node.ws`). Every request is handled
on one dedicated worker thread that owns the chain (VM state and SQLite connection),
so requests are serialized exactly as a sequencer would order them, and the event
loop stays free to accept connections while the Cairo VM runs. The answer is always
HTTP 200 with a JSON-RPC body (or 204 for notifications only), never a 500 for a
client's mistake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from chain.node import rpc
from chain.node.errors import RpcError, invalid_request, parse_error
from chain.node.node import DevNode
from chain.node.ws import WsHub

log = logging.getLogger("keikochain.server")

MAX_BODY_BYTES = 16 * 1024 * 1024


def _error_response(err: RpcError) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": err.to_json()})


def create_app(node: DevNode, executor: ThreadPoolExecutor) -> Starlette:
    """The ASGI app; ``executor`` must be the single thread that owns ``node``."""

    async def handle_rpc(request: Request) -> Response:
        too_big = invalid_request(f"body larger than {MAX_BODY_BYTES} bytes")
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error_response(too_big)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error_response(too_big)
        try:
            payload: Any = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _error_response(parse_error(str(exc)[:200]))
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, rpc.handle_payload, node, payload)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result)

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "name": "keikochain-dev-node",
                "spec_version": rpc.SPEC_VERSION,
                "chain_id": hex(node.chain_id),
                "rpc": "POST / or /rpc (JSON-RPC 2.0)",
                "ws": "/ws (JSON-RPC 2.0 and subscriptions)",
            }
        )

    hub = WsHub(node, executor)

    async def websocket(socket: WebSocket) -> None:
        await hub.serve(socket)

    routes = [
        WebSocketRoute("/ws", websocket),
        Route("/", handle_rpc, methods=["POST"]),
        Route("/rpc", handle_rpc, methods=["POST"]),
        Route("/", info, methods=["GET"]),
        Route("/rpc", info, methods=["GET"]),
    ]
    return Starlette(routes=routes)
