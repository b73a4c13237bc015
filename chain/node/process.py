"""Run the dev node as a child process (``python -m chain.node``).

The Cairo VM is CPU-bound; in its own process it never blocks the event loop of the
services that talk to it over JSON-RPC::

    node = start_node_process(Path(".keiko/chain"), port=5050)
    ...  # node.rpc_url, node.deployment_file, node.accounts_file
    node.stop()

or as a context manager (``with start_node_process(...) as node:``); from async code,
``node = await astart_node_process(...)`` and ``await node.astop()``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from chain.node.config import ACCOUNTS_FILE, DEFAULT_ACCOUNTS, DEFAULT_HOST, DEPLOYMENT_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]


# The child reads this end of a pipe whose other end only its parent holds: end of file
# means the parent is gone (even SIGKILLed), and the node stops (see exit_with_parent).
LIFELINE_ENV = "KEIKO_PARENT_LIFELINE_FD"
LIFELINE_GRACE_SECONDS = 10.0


class NodeStartError(RuntimeError):
    pass


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (or holds) host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def exit_with_parent() -> None:
    """In the node child: stop (SIGTERM to ourselves: a graceful uvicorn shutdown, then a
    hard exit after a grace period) as soon as the parent's end of the lifeline closes."""
    fd_text = os.environ.pop(LIFELINE_ENV, "")
    if not fd_text.isdigit():
        return
    fd = int(fd_text)

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(LIFELINE_GRACE_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-lifeline", daemon=True).start()


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free right now (for tests and embedded runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "starknet_chainId"}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


class NodeProcess:
    """A running ``python -m chain.node`` child."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        data_dir: Path,
        host: str,
        port: int,
        log_file: IO[bytes] | None,
        lifeline: int | None = None,
    ) -> None:
        self.process = process
        self._lifeline = lifeline
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self._log_file = log_file

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}/rpc"

    @property
    def deployment_file(self) -> Path:
        return self.data_dir / DEPLOYMENT_FILE

    @property
    def accounts_file(self) -> Path:
        return self.data_dir / ACCOUNTS_FILE

    def deployment(self) -> dict[str, Any]:
        return dict(json.loads(self.deployment_file.read_text()))

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (uvicorn shuts down cleanly and closes the database), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        return int(self.process.returncode)

    async def astop(self, timeout: float = 15.0) -> int:
        """``stop`` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.stop, timeout)

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_node_process(
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    seed: str | None = None,
    log_path: Path | None = None,
    startup_timeout: float = 120.0,
    extra_args: list[str] | None = None,
) -> NodeProcess:
    """Start the node in a child process and wait until its JSON-RPC answers.

    ``port=None`` picks a free port. The child's output (including the dev-account
    banner) goes to ``log_path`` if given, else to this process's stdout/stderr."""
    port = free_port(host) if port is None else port
    if port_in_use(host, port):
        raise NodeStartError(
            f"the chain node's port {host}:{port} is already in use "
            "(set KEIKO_CHAIN_NODE_PORT to a free port, or 0 for any)"
        )
    args = [
        sys.executable,
        "-m",
        "chain.node",
        "--data-dir",
        str(data_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--accounts",
        str(accounts),
    ]
    if seed is not None:
        args += ["--seed", seed]
    args += extra_args or []
    log_file: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab")  # noqa: SIM115  (closed by NodeProcess.stop)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    lifeline_read, lifeline_write = os.pipe()
    os.set_inheritable(lifeline_write, False)
    env[LIFELINE_ENV] = str(lifeline_read)
    try:
        process = subprocess.Popen(
            args,
            cwd=str(REPO_ROOT),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT if log_file is not None else None,
            pass_fds=(lifeline_read,),
        )
    finally:
        os.close(lifeline_read)
    node = NodeProcess(process, data_dir, host, port, log_file, lifeline_write)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            node.stop()
            raise NodeStartError(
                f"the node exited with code {process.returncode}"
                + (f" ({_last_line(log_path)}); see {log_path}" if log_path else "")
            )
        if rpc_ready(node.rpc_url):
            return node
        time.sleep(0.1)
    node.stop()
    raise NodeStartError(f"the node did not answer on {node.rpc_url} in {startup_timeout}s")


def _last_line(log_path: Path) -> str:
    """The last line the node logged (its reason to stop, e.g. a bind error)."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


async def astart_node_process(
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    **kwargs: Any,
) -> NodeProcess:
    """``start_node_process`` for async callers (``keiko serve``): the wait for the
    node's first answer runs in a thread, never on the caller's event loop."""
    return await asyncio.to_thread(start_node_process, data_dir, host, port, **kwargs)
