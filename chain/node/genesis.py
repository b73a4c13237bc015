"""Genesis of a Keikochain dev chain.

Block 0 is the system state every Starknet network starts from (fee tokens, Universal
Deployer, prefunded dev accounts: :mod:`chain.node.system`). Keiko's own contracts then
arrive by real transactions, signed by dev account 0 and mined in the following blocks:
the same DECLAREs and UDC INVOKE that ``keiko chain deploy`` sends to any other chain
(:func:`chain.deploy.deployer.deploy_keiko`), here through starknet-py's client wired to
the node in-process. Their addresses go to ``<data dir>/deployment.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from starknet_py.net.account.account import Account
from starknet_py.net.client_models import ResourceBounds, ResourceBoundsMapping
from starknet_py.net.signer.key_pair import KeyPair

from chain.client.signer import FastStarkSigner
from chain.deploy.deployer import DeployReport, deploy_keiko
from chain.node.accounts import DevAccount
from chain.node.fees import L1_DATA_GAS_PRICE_FRI, L1_GAS_PRICE_FRI, L2_GAS_PRICE_FRI
from chain.node.local_client import local_client
from chain.node.node import DevNode

# Fixed bounds at the chain's own prices (skips an estimate per transaction at genesis).
GENESIS_BOUNDS = ResourceBoundsMapping(
    l1_gas=ResourceBounds(max_amount=0, max_price_per_unit=L1_GAS_PRICE_FRI),
    l2_gas=ResourceBounds(max_amount=10**8, max_price_per_unit=L2_GAS_PRICE_FRI),
    l1_data_gas=ResourceBounds(max_amount=10**5, max_price_per_unit=L1_DATA_GAS_PRICE_FRI),
)


def deploy_keiko_genesis(node: DevNode, operator: DevAccount, build_dir: Path) -> DeployReport:
    """Keiko's contracts by real transactions from ``operator`` (dev account 0). Runs its
    own event loop: call it on the node's thread, outside any running loop."""

    async def run() -> DeployReport:
        client = local_client(node)
        account = Account(
            address=operator.address,
            client=client,
            signer=FastStarkSigner(
                operator.address, KeyPair.from_private_key(operator.private_key), node.chain_id
            ),
        )
        return await deploy_keiko(account, build_dir=build_dir, resource_bounds=GENESIS_BOUNDS)

    return asyncio.run(run())


def write_json_atomic(path: Path, body: Any, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
