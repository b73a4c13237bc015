"""`keiko serve` as a process: a port already in use stops start-up with a clear message
(for the gRPC, HTTP and chain node ports, and no "Keiko is running"); SIGTERM stops the
platform within its grace period even with a long request open; the embedded chain node
never outlives its parent, even a SIGKILLed one. Waits are bounded; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import connect

from chain.node.process import port_in_use
from tests.test_cli_serve import ROOT, free_port, wait_for_banner

GRACE_SECONDS = 2


def serve_env(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        **os.environ,
        "KEIKO_DATA_DIR": str(data_dir),
        "KEIKO_DATABASE_URL": "",
        "KEIKO_EVENT_BUS_URL": "memory://",
        "KEIKO_CHAIN_RPC_URL": "",
        "KEIKO_GRPC_PORT": str(ports["grpc"]),
        "KEIKO_HTTP_PORT": str(ports["http"]),
        "KEIKO_CHAIN_NODE_PORT": str(ports["chain"]),
        "KEIKO_LOG_LEVEL": "WARNING",
        "KEIKO_HUMANITY_WARM_UP": "false",
        "KEIKO_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }


def start(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "keiko", "serve"],
        cwd=ROOT,
        env=serve_env(data_dir, ports),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def held(port: int) -> Iterator[socket.socket]:
    """Something else listening on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def gone(pid: int) -> bool:
    """Exited (or a zombie nobody reaped yet: it runs no more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.2)
    return gone(pid)


def node_child(serve: subprocess.Popen[str]) -> int:
    [(pid, cmdline)] = [c for c in children(serve.pid) if "chain.node" in c[1]]
    assert "--port" in cmdline
    return pid


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("grpc", "the gRPC port 127.0.0.1:{port} is already in use (set KEIKO_GRPC_PORT"),
        ("http", "the HTTP port 127.0.0.1:{port} is already in use (set KEIKO_HTTP_PORT"),
        (
            "chain",
            "the chain node's port 127.0.0.1:{port} is already in use (set KEIKO_CHAIN_NODE_PORT",
        ),
    ],
)
def test_a_port_in_use_stops_start_up_with_a_clear_message(
    tmp_path: Path, which: str, message: str
) -> None:
    ports = {"grpc": free_port(), "http": free_port(), "chain": free_port()}
    with held(ports[which]):
        process = start(tmp_path / "data", ports)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)
    assert f"keiko: cannot start: {message.format(port=ports[which])}" in err
    assert "Keiko is running" not in out
    assert "Traceback" not in err


def test_sigterm_stops_within_the_grace_period_during_a_long_request(tmp_path: Path) -> None:
    ports = {"grpc": free_port(), "http": free_port(), "chain": free_port()}
    process = start(tmp_path / "data", ports)
    try:
        wait_for_banner(process)
        node = node_child(process)
        # A long request: a subscription that never ends by itself.
        with connect(
            f"ws://127.0.0.1:{ports['http']}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(ws.recv(timeout=30))["type"] == "connection_ack"
            ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": "subscription { serviceHealth { status } }"},
                    }
                )
            )
            first = json.loads(ws.recv(timeout=30))
            assert first["payload"]["data"]["serviceHealth"]["status"] == "SERVING"
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=60)
        assert exit_code == 0
        assert wait_until_gone(node)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_chain_node_never_outlives_its_parent_even_sigkilled(tmp_path: Path) -> None:
    ports = {"grpc": free_port(), "http": free_port(), "chain": free_port()}
    process = start(tmp_path / "data", ports)
    node = 0
    try:
        wait_for_banner(process)
        node = node_child(process)
        assert not gone(node)
        process.kill()  # SIGKILL: no handler, no cleanup in the parent
        process.wait(timeout=30)
        assert wait_until_gone(node), "the chain node outlived its SIGKILLed parent"
        assert not port_in_use("127.0.0.1", ports["chain"])  # its port is free again
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if node and not gone(node):
            os.kill(node, signal.SIGKILL)
