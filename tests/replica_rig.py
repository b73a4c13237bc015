"""The production shape, as processes: one Keikochain dev node, two replicas of every
service, two gateways, a private Redis and a throwaway PostgreSQL database. Used by
tests/test_replicas.py; every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain.node.process import free_port
from chain.translator.keys import KeyVault
from services.kit.testing import test_backend

ORIGIN = "http://localhost:8000"
# Replica groups: each runs twice, in its own process. Learning and the translator run
# alone (the test kills one of each); the other five services share a process.
GROUPS: dict[str, tuple[str, ...]] = {
    "learning": ("learning",),
    "chain": ("chain",),
    "core": ("identity", "passport", "reputation", "governance", "marketplace"),
}
READY = ("Keiko is running", "Keiko gateway is running")


@dataclass
class Process:
    """One `keiko` process: its command, environment and log; restartable."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(30)

    def stop(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Replica:
    process: Process
    grpc_port: int


@dataclass
class Gateway:
    process: Process
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class Rig:
    root: Path
    database_url: str
    redis: Process
    redis_port: int
    node: Process
    node_port: int
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    gateways: list[Gateway] = field(default_factory=list)

    def processes(self) -> list[Process]:
        out = [self.redis, self.node]
        out += [r.process for group in self.replicas.values() for r in group]
        out += [g.process for g in self.gateways]
        return out

    def restart_redis(self) -> None:
        """Stop the private Redis (it keeps nothing: no RDB, no AOF) and start it again on
        the same port."""
        self.redis.kill()
        self.redis.start()
        wait_for_port(self.redis_port, "redis-server")


def need_engines() -> None:
    """Skip unless the real engines run (PostgreSQL, and redis-server to run a private
    Redis); with CI=true a missing redis-server fails instead."""
    if test_backend() != "real":
        pytest.skip("needs PostgreSQL and Redis: runs with KEIKO_TEST_BACKEND=real")
    if shutil.which("redis-server") is None:
        message = "redis-server not installed: the test runs its own Redis"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"{what} never listened on {port}")


def wait_ready(processes: list[Process], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(processes)
    while waiting:
        for process in list(waiting):
            if any(marker in process.output() for marker in READY):
                waiting.remove(process)
            elif not process.alive():
                pytest.fail(f"{process.name} exited:\n{process.output()[-4000:]}")
        if time.monotonic() > deadline:
            names = ", ".join(p.name for p in waiting)
            pytest.fail(f"not ready after {timeout} s: {names}\n{waiting[0].output()[-4000:]}")
        time.sleep(0.1)


def keiko(*args: str) -> list[str]:
    return [sys.executable, "-m", "keiko", *args]


def redis_process(root: Path, port: int) -> Process:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    return Process("redis", argv, dict(os.environ), root / "logs" / "redis.log")


def base_env(root: Path, database_url: str, redis_port: int, node_port: int) -> dict[str, str]:
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    private = keys / "jwt-ed25519.pem"
    private.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEIKO_")}
    env.update(
        {
            "KEIKO_DATA_DIR": str(root / "data"),
            "KEIKO_DATABASE_URL": database_url,
            "KEIKO_EVENT_BUS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "KEIKO_CHAIN_RPC_URL": f"http://127.0.0.1:{node_port}/rpc",
            "KEIKO_JWT_PRIVATE_KEY_FILE": str(private),
            "KEIKO_KEK": KeyVault.new_kek(),
            "KEIKO_HUMANITY_WARM_UP": "false",
            "KEIKO_WEBAUTHN_ORIGINS": json.dumps([ORIGIN]),
            "KEIKO_WEBAUTHN_RP_ID": "localhost",
            "KEIKO_PUBLIC_BASE_URL": ORIGIN,
            "KEIKO_LOG_JSON": "false",
            "KEIKO_LOG_LEVEL": "WARNING",
            "KEIKO_SHUTDOWN_GRACE_SECONDS": "1",
            # Small batches and quick retries: the test anchors within seconds.
            "KEIKO_CHAIN_BATCH_MAX_LEAVES": "8",
            "KEIKO_CHAIN_BATCH_MAX_WAIT_MS": "700",
            "KEIKO_CHAIN_RETRY_INITIAL_MS": "200",
            "KEIKO_CHAIN_RETRY_MAX_DELAY_S": "2",
            "KEIKO_CHAIN_BREAKER_RESET_S": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextmanager
def running_rig(root: Path, database_url: str) -> Iterator[Rig]:
    """Start everything (node and Redis first, then migrations, then the replicas and the
    gateways, all at once) and stop it all at the end, whatever happened."""
    redis_port, node_port = free_port(), free_port()
    env = base_env(root, database_url, redis_port, node_port)
    rig = Rig(
        root,
        database_url,
        redis_process(root, redis_port),
        redis_port,
        Process(
            "node",
            keiko("chain", "node", "--port", str(node_port)),
            env,
            root / "logs" / "node.log",
        ),
        node_port,
    )
    try:
        rig.redis.start()
        rig.node.start()
        migrated = subprocess.run(keiko("migrate"), env=env, capture_output=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr.decode(errors="replace")[-4000:]
        ports = {group: [free_port(), free_port()] for group in GROUPS}
        targets = {
            group: ",".join(f"127.0.0.1:{p}" for p in group_ports)
            for group, group_ports in ports.items()
        }
        service_targets = {
            service: targets[group] for group, services in GROUPS.items() for service in services
        }
        env["KEIKO_SERVICE_TARGETS"] = json.dumps(service_targets)
        env["KEIKO_CHAIN_TRANSLATOR_TARGET"] = targets["chain"]
        wait_for_port(node_port, "the chain node", timeout=240)
        for group, services in GROUPS.items():
            args = [a for s in services for a in ("--service", s)]
            rig.replicas[group] = []
            for index, port in enumerate(ports[group]):
                name = f"{group}-{'ab'[index]}"
                process = Process(
                    name,
                    keiko("serve", *args),
                    {**env, "KEIKO_GRPC_PORT": str(port)},
                    root / "logs" / f"{name}.log",
                )
                rig.replicas[group].append(Replica(process, port))
        for index in range(2):
            port = free_port()
            name = f"gateway-{'ab'[index]}"
            process = Process(
                name,
                keiko("serve", "--gateway-only"),
                {**env, "KEIKO_HTTP_PORT": str(port)},
                root / "logs" / f"{name}.log",
            )
            rig.gateways.append(Gateway(process, port))
        started = [
            *(r.process for group in rig.replicas.values() for r in group),
            *(g.process for g in rig.gateways),
        ]
        for process in started:
            process.start()
        wait_ready(started)
        yield rig
    finally:
        for process in reversed(rig.processes()):
            process.stop()
