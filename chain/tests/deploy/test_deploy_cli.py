"""``keiko chain deploy`` onto a dev node started without Keiko's contracts: declares and
deploys them by ordinary transactions, writes deployment.json, a second run reuses
everything, and Keiko's client then works against that deployment."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.client import KeikoChain
from chain.node.accounts import read_accounts_file
from chain.node.process import NodeProcess, start_node_process
from keiko.cli import main as keiko_main


@pytest.fixture(scope="module")
def empty_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base: Path = tmp_path_factory.mktemp("empty-chain")
    node = start_node_process(
        base / "chain",
        accounts=2,
        log_path=base / "node.log",
        extra_args=["--no-keiko-contracts"],
    )
    try:
        yield node
    finally:
        node.stop()


def deploy(node: NodeProcess, out: Path, *extra: str) -> tuple[int, str]:
    operator = read_accounts_file(node.accounts_file)[0]
    text = io.StringIO()
    from chain.deploy import cli

    code = cli.main(
        [
            "--rpc",
            node.rpc_url,
            "--account",
            hex(operator.address),
            "--private-key",
            hex(operator.private_key),
            "--out",
            str(out),
            *extra,
        ],
        out=text,
    )
    return code, text.getvalue()


async def test_deploy_on_an_empty_node_then_again(empty_node: NodeProcess, tmp_path: Path) -> None:
    assert empty_node.deployment()["contracts"] == {}
    out = tmp_path / "deployment.json"
    code, text = await asyncio.to_thread(deploy, empty_node, out)
    assert code == 0, text
    assert "3 declared, 3 deployed" in text  # the account class was already there
    deployment = json.loads(out.read_text())
    assert set(deployment["contracts"]) == {"humanity_registry", "interaction_anchor", "governance"}

    code, again = await asyncio.to_thread(deploy, empty_node, out)
    assert code == 0, again
    assert "0 declared, 0 deployed, 0 transactions" in again
    assert json.loads(out.read_text())["contracts"] == deployment["contracts"]

    operator = read_accounts_file(empty_node.accounts_file)[0]
    async with await KeikoChain.connect(
        empty_node.rpc_url, operator.address, operator.private_key, out, poll_interval=0.05
    ) as chain:
        result = await chain.anchor.anchor_batch(0xD1, 0xD1D1, 3, "learning")
        assert result.succeeded, result.revert_reason
        batch = await chain.anchor.get_batch(0xD1)
        assert batch is not None and batch.root == 0xD1D1


def test_cli_entry_and_missing_key(
    empty_node: NodeProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEIKO_CHAIN_PRIVATE_KEY", raising=False)
    code = keiko_main(
        [
            "chain",
            "deploy",
            "--rpc",
            empty_node.rpc_url,
            "--account",
            "0x1",
            "--out",
            str(tmp_path / "d.json"),
        ]
    )
    assert code == 2
