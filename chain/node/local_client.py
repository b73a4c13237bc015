"""starknet-py's ``FullNodeClient`` wired to a :class:`DevNode` in the same thread, without
HTTP: the node's genesis sends its real transactions through the very code
(:mod:`chain.deploy.deployer`) that deploys Keiko on a remote chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient

from chain.node.rpc import handle_request

if TYPE_CHECKING:
    from chain.node.node import DevNode


class LocalRpc:
    """Stands in for starknet-py's ``RpcHttpClient``: same ``call``, same errors."""

    def __init__(self, node: DevNode, method_prefix: str = "starknet") -> None:
        self.node = node
        self.method_prefix = method_prefix

    async def call(self, method_name: str, params: Any = None) -> Any:
        request = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": f"{self.method_prefix}_{method_name}",
            "params": params if params is not None else {},
        }
        response = handle_request(self.node, request)
        assert response is not None
        if "error" in response:
            error = response["error"]
            raise ClientError(code=error["code"], message=error["message"], data=error.get("data"))
        return response["result"]


def local_client(node: DevNode) -> FullNodeClient:
    client = FullNodeClient(node_url="http://keikochain.in-process/rpc")
    client._client = LocalRpc(node)  # type: ignore[assignment]
    return client
