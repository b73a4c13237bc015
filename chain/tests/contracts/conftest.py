"""Fixtures: the compiled contracts declared once per session, a fresh chain per test."""

from __future__ import annotations

import pytest

from chain.tests.contracts.helpers import CONTRACTS
from chain.vm import BlockContext, CairoVM

GENESIS_TIME = 1_700_000_000


@pytest.fixture(scope="session")
def declared() -> CairoVM:
    # Declaring hashes every class (about a second each), so it happens once; tests
    # get forks of this VM.
    vm = CairoVM(block=BlockContext(number=1, timestamp=GENESIS_TIME))
    for name in CONTRACTS:
        vm.declare_build(name)
    return vm


@pytest.fixture
def vm(declared: CairoVM) -> CairoVM:
    return declared.fork()
