"""JSON-RPC 2.0 request handling over the method table (:mod:`chain.node.registry`).

``handle_payload`` takes the decoded HTTP body (one request object or a batch) and
returns what to send back (``None`` when everything was a notification). Every failure
becomes a JSON-RPC error object: client mistakes with their spec code, anything
unexpected as ``-32603`` with a masked message and a logged stack trace. The WebSocket
methods (``starknet_subscribe*``, ``starknet_unsubscribe``) are served at ``/ws`` only
(:mod:`chain.node.ws`); over HTTP they answer ``-32600`` saying so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chain.node import devnet_api, read_api, write_api  # noqa: F401  (register methods)
from chain.node.errors import RpcError, invalid_params, invalid_request, method_not_found
from chain.node.read_api import SPEC_VERSION
from chain.node.registry import METHODS

if TYPE_CHECKING:
    from chain.node.node import DevNode

log = logging.getLogger("keikochain.rpc")

WS_METHODS = frozenset(
    {
        "starknet_subscribeNewHeads",
        "starknet_subscribeEvents",
        "starknet_subscribeTransactionStatus",
        "starknet_subscribeNewTransactions",
        "starknet_subscribeNewTransactionReceipts",
        "starknet_unsubscribe",
    }
)

__all__ = ["SPEC_VERSION", "WS_METHODS", "handle_payload", "handle_request", "supported_methods"]


def supported_methods() -> list[str]:
    return sorted(METHODS)


# --- JSON-RPC 2.0 framing -------------------------------------------------------------


def _bind(method_name: str, names: tuple[str, ...], params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, list):
        if len(params) > len(names):
            raise invalid_params(f"{method_name} takes at most {len(names)} params")
        return dict(zip(names, params, strict=False))
    if isinstance(params, dict):
        unknown = set(params) - set(names)
        if unknown:
            raise invalid_params(f"unexpected params: {', '.join(sorted(unknown))}")
        return params
    raise invalid_params("params must be an array or an object")


def _error(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


def handle_request(node: DevNode, request: Any) -> dict[str, Any] | None:
    """One JSON-RPC request object; ``None`` for a notification (no ``id``)."""
    if not isinstance(request, dict):
        return _error(None, invalid_request("a request must be a JSON object"))
    req_id = request.get("id")
    if not isinstance(req_id, str | int | float | type(None)) or isinstance(req_id, bool):
        return _error(None, invalid_request("id must be a string, a number or null"))
    is_notification = "id" not in request
    name = request.get("method")
    if request.get("jsonrpc") != "2.0" or not isinstance(name, str):
        return _error(req_id, invalid_request("expected jsonrpc '2.0' and a method name"))
    try:
        if name in WS_METHODS:
            raise invalid_request(f"{name} is a WebSocket subscription: connect to /ws")
        if name not in METHODS:
            raise method_not_found(name)
        names, handler = METHODS[name]
        result = handler(node, _bind(name, names, request.get("params")))
    except RpcError as err:
        return None if is_notification else _error(req_id, err)
    except Exception:
        log.exception("internal error in %s", name)
        return None if is_notification else _error(req_id, RpcError(-32603, "Internal error"))
    return None if is_notification else {"jsonrpc": "2.0", "id": req_id, "result": result}


def handle_payload(node: DevNode, payload: Any) -> Any:
    """A single request or a batch, as JSON-RPC 2.0 defines them."""
    if isinstance(payload, list):
        if not payload:
            return _error(None, invalid_request("empty batch"))
        responses = [r for r in (handle_request(node, item) for item in payload) if r is not None]
        return responses or None
    return handle_request(node, payload)
