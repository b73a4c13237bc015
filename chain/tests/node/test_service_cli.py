"""``keiko chain node`` settings and start-up failures, without running a chain."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chain.node.process import REPO_ROOT
from chain.node.service import EXIT_PORT_IN_USE, parse_args


def test_keiko_settings_are_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEIKO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KEIKO_CHAIN_NODE_HOST", "127.0.0.2")
    monkeypatch.setenv("KEIKO_CHAIN_NODE_PORT", "6060")
    config = parse_args([])
    assert config.data_dir == tmp_path / "data" / "chain"
    assert (config.host, config.port) == ("127.0.0.2", 6060)
    explicit = parse_args(["--data-dir", str(tmp_path / "x"), "--port", "7070"])
    assert explicit.data_dir == tmp_path / "x" and explicit.port == 7070


def test_a_taken_port_fails_at_once_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "chain.node", "--data-dir", str(tmp_path), "--port", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == EXIT_PORT_IN_USE
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "chain.sqlite3").exists()  # nothing started before the bind
