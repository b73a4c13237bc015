"""`keiko serve` as `make run` starts it: a real process with the embedded chain node."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_banner(process: subprocess.Popen[str], timeout: float = 180) -> list[str]:
    """Lines printed until the end of the start-up banner."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise AssertionError(f"keiko serve exited early: {lines}")
            continue
        lines.append(line.rstrip())
        if line.startswith("Ctrl-C stops"):
            return lines
    raise AssertionError(f"no banner within {timeout} s: {lines}")


def test_keiko_serve_runs_everything_and_stops_cleanly(tmp_path: Path) -> None:
    """`keiko serve` starts everything and prints where; `keiko demo` runs the main job
    against it (the verifier passes); SIGTERM stops it cleanly."""
    grpc_port, http_port, chain_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "KEIKO_DATA_DIR": str(tmp_path / "data"),
        "KEIKO_DATABASE_URL": "",
        "KEIKO_EVENT_BUS_URL": "memory://",
        "KEIKO_CHAIN_RPC_URL": "",
        "KEIKO_GRPC_PORT": str(grpc_port),
        "KEIKO_HTTP_PORT": str(http_port),
        "KEIKO_CHAIN_NODE_PORT": str(chain_port),
        "KEIKO_LOG_LEVEL": "WARNING",
        "KEIKO_HUMANITY_WARM_UP": "false",  # no enrollment here: skip the decoder's JIT
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "keiko", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = "\n".join(wait_for_banner(process))
        assert f"127.0.0.1:{grpc_port}" in banner
        assert f"http://localhost:{http_port}/graphql" in banner
        assert f"http://localhost:{http_port}/app" in banner
        assert f"http://127.0.0.1:{chain_port}/rpc" in banner

        # Ready soon after the banner (start-up jobs may still hold the loop on a busy
        # machine): polled, bounded.
        deadline = time.monotonic() + 60
        while True:
            ready = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=10)
            if ready.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (ready.status_code, ready.json()) == (200, {"status": "serving"})
        chain_id = httpx.post(
            f"http://127.0.0.1:{chain_port}/rpc",
            json={"jsonrpc": "2.0", "id": 1, "method": "starknet_chainId", "params": []},
            timeout=10,
        ).json()
        assert chain_id["result"].startswith("0x")
        deployment = json.loads((tmp_path / "data" / "chain" / "deployment.json").read_text())
        assert {"interaction_anchor", "humanity_registry", "governance"} <= set(
            deployment["contracts"]
        )

        # `keiko demo` against the started platform: the main job, verified.
        results = tmp_path / "demo.json"
        demo = subprocess.run(
            [sys.executable, "-m", "keiko", "demo", "--json-file", str(results)],
            cwd=ROOT,
            env={**env, "KEIKO_OPERATOR_PASSKEY": str(tmp_path / "operator-passkey.json")},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "RESULT: VERIFIED: all 4 anchored entries check out" in demo.stdout
        done = json.loads(results.read_text())
        assert done["verifier_exit_code"] == 0
        assert done["share_url"].startswith(f"http://localhost:{http_port}/verify/share/")
        page = httpx.get(done["share_url"], timeout=30).text
        assert page.count('data-status="verified"') == 4
        # Titles, not ids; the learner's name, since the demo's link discloses identity.
        assert '<span id="learner">Ana Demo</span>' in page
        # The anchor link works on the embedded default: the node's receipt, succeeded.
        receipt = httpx.get(done["urls"]["anchor transaction of the first entry"], timeout=30)
        assert receipt.status_code == 200, receipt.text
        assert receipt.json()["execution_status"] == "SUCCEEDED"
        assert "Course: Linear Algebra (demo)" in page and "Class: Class 2: Matrices" in page
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    assert exit_code == 0


def test_serve_without_a_kek_on_postgresql_stops_with_the_reason(tmp_path: Path) -> None:
    """Outside the embedded default the KEK is not made up: `keiko serve` refuses to
    start (the chain translator is built before anything connects) and says why."""
    env = {
        **os.environ,
        "KEIKO_DATA_DIR": str(tmp_path / "data"),
        "KEIKO_DATABASE_URL": "postgresql+asyncpg://keiko@127.0.0.1:5432/keiko",
        "KEIKO_GRPC_PORT": str(free_port()),
        "KEIKO_LOG_LEVEL": "WARNING",
    }
    env.pop("KEIKO_KEK", None)
    done = subprocess.run(
        [sys.executable, "-m", "keiko", "serve", "--service", "chain"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "KEIKO_KEK is required outside the embedded default" in done.stderr
    assert "Keiko is running" not in done.stdout


def test_verify_defaults_follow_the_configuration() -> None:
    """`keiko passport verify <passport id>` asks the gateway the configuration names
    (KEIKO_PUBLIC_BASE_URL, else localhost and KEIKO_HTTP_PORT), not a fixed :8000."""
    env = {**os.environ, "KEIKO_HTTP_PORT": "8123"}
    env.pop("KEIKO_PUBLIC_BASE_URL", None)
    shown = subprocess.run(
        [sys.executable, "-m", "keiko", "passport", "verify", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "default: http://localhost:8123" in " ".join(shown.stdout.split()), shown.stdout
    env["KEIKO_PUBLIC_BASE_URL"] = "https://keiko.example/"
    shown = subprocess.run(
        [sys.executable, "-m", "keiko", "passport", "verify", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "default: https://keiko.example)" in " ".join(shown.stdout.split()), shown.stdout
