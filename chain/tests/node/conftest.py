"""Fixtures: one dev node per test session (a child process on a free port, temp data
dir), plus starknet-py clients and accounts bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from starknet_py.net.account.account import Account
from starknet_py.net.full_node_client import FullNodeClient

from chain.node.process import NodeProcess, start_node_process
from chain.tests.node.harness import DevChain, account_for


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base: Path = tmp_path_factory.mktemp("keikochain")
    process = start_node_process(base / "chain", accounts=4, log_path=base / "node.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def devchain(node: NodeProcess) -> DevChain:
    return DevChain.load(node)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def client(node: NodeProcess, session: aiohttp.ClientSession) -> FullNodeClient:
    return FullNodeClient(node_url=node.rpc_url, session=session)


@pytest.fixture
def account0(client: FullNodeClient, devchain: DevChain) -> Account:
    return account_for(client, devchain, 0)
