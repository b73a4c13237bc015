from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import pytest

from services.identity.humanity import pipeline


@pytest.fixture(scope="session", autouse=True)
def _warm_codes() -> None:
    """Build the BCH codes and compile the decoder once per test session (seconds)."""
    pipeline.warm_up()
