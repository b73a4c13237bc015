"""Run one of the independent Node.js verifiers of ``tests/interop`` (each a directory
with its ``package.json``, installed by ``make interop``) on a JSON request."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE = shutil.which("node")


def run_node(tool: Path, script: str, installed: str, request: Any, timeout: float) -> Any:
    """``node <tool>/<script>`` with ``request`` as JSON on stdin; its JSON stdout. Fails
    the test when the tool's ``node_modules/<installed>`` is missing."""
    if not (tool / "node_modules" / installed).is_dir():
        pytest.fail(f"tests/interop/{tool.name} is not installed: `make interop` (make test) does")
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(tool / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
