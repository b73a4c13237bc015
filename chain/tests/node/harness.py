"""Helpers shared by the node and client tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from starknet_py.net.account.account import Account
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.signer.key_pair import KeyPair

from chain.node.accounts import DevAccount, read_accounts_file
from chain.node.process import NodeProcess

LEARNING = int.from_bytes(b"learning", "big")


@dataclass(frozen=True)
class DevChain:
    rpc_url: str
    chain_id: int
    accounts: list[DevAccount]
    deployment: dict[str, Any]

    @classmethod
    def load(cls, node: NodeProcess) -> DevChain:
        deployment = node.deployment()
        return cls(
            rpc_url=node.rpc_url,
            chain_id=int(deployment["chain_id"], 16),
            accounts=read_accounts_file(node.accounts_file),
            deployment=deployment,
        )

    def address(self, contract: str) -> int:
        return int(self.deployment["contracts"][contract]["address"], 16)


def account_for(
    client: FullNodeClient, chain: DevChain, index: int, *, private_key: int | None = None
) -> Account:
    dev = chain.accounts[index]
    return Account(
        address=dev.address,
        client=client,
        key_pair=KeyPair.from_private_key(private_key or dev.private_key),
        chain=chain.chain_id,
    )


async def raw_rpc(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    """POST a raw body (object, list, or bytes) and return (HTTP status, decoded JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
        return r.status, (json.loads(text) if text else None)
