"""The test plugin's real-engine pass rules, checked by running pytest on a tiny project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEAD_PG = "postgresql://postgres@127.0.0.1:1/postgres"  # port 1: nothing listens

SAMPLE = """
import pytest

def test_pure():
    pass

@pytest.mark.engines
def test_forced():
    pass

async def test_uses_db(database):
    pass

def test_uses_clock(clock):
    assert clock.now().year == 2026
"""


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    full_env = {k: v for k, v in os.environ.items() if k not in ("CI", "KEIKO_TEST_BACKEND")}
    # No third-party plugin autoload (hypothesis, anyio, ...): seconds saved per run.
    full_env.update(env, PYTHONPATH=str(REPO), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "pytest_asyncio.plugin",
            "-p",
            "services.kit.testing",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-rsE",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_pass_runs_everything(tmp_path: Path) -> None:
    result = _pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert "keiko test backend: embedded" in result.stdout


def test_real_pass_deselects_engine_free_tests_and_skips_when_unreachable(
    tmp_path: Path,
) -> None:
    result = _pytest(tmp_path, KEIKO_TEST_BACKEND="real", KEIKO_TEST_POSTGRES_URL=DEAD_PG)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # test_forced (marker) ran; test_uses_db skipped with the reason; two deselected.
    assert "1 passed, 1 skipped, 2 deselected" in out
    assert "PostgreSQL not reachable at postgresql://postgres@127.0.0.1:1/postgres" in out
    assert "2 other tests deselected" in out


def test_real_pass_in_ci_fails_when_an_engine_is_unreachable(tmp_path: Path) -> None:
    result = _pytest(
        tmp_path, KEIKO_TEST_BACKEND="real", KEIKO_TEST_POSTGRES_URL=DEAD_PG, CI="true"
    )
    assert result.returncode != 0
    assert "CI=true and PostgreSQL not reachable" in result.stdout + result.stderr


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    result = _pytest(tmp_path, KEIKO_TEST_BACKEND="mongo")
    assert result.returncode != 0
    assert "KEIKO_TEST_BACKEND='mongo'" in result.stdout + result.stderr
