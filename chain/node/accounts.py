"""Deterministic predeployed dev accounts, derived from a seed.

Account ``i`` has the private key ``sha256("keikochain-dev-account:<seed>:<i>")`` reduced
into ``[1, EC_ORDER)``, its Stark public key, and the address the account class would be
deployed at by a DEPLOY_ACCOUNT with ``salt = public key`` and constructor ``[public key]``
(what starknet-py's ``Account.deploy_account_v3`` computes). Same seed, same accounts.

The keys are development secrets: they are printed at start and written to
``<data dir>/accounts.json`` (mode 0600) and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from starknet_py.constants import EC_ORDER
from starknet_py.hash.address import compute_address
from starknet_py.net.signer.key_pair import KeyPair

DEFAULT_SEED = "keikochain-dev"


@dataclass(frozen=True)
class DevAccount:
    index: int
    address: int
    private_key: int
    public_key: int

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "address": hex(self.address),
            "private_key": hex(self.private_key),
            "public_key": hex(self.public_key),
        }


def derive_private_key(seed: str, index: int) -> int:
    digest = hashlib.sha256(f"keikochain-dev-account:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest, "big") % (EC_ORDER - 1) + 1


def account_address(account_class_hash: int, public_key: int) -> int:
    return compute_address(
        class_hash=account_class_hash,
        constructor_calldata=[public_key],
        salt=public_key,
        deployer_address=0,
    )


def derive_accounts(seed: str, count: int, account_class_hash: int) -> list[DevAccount]:
    accounts = []
    for i in range(count):
        private_key = derive_private_key(seed, i)
        public_key = KeyPair.from_private_key(private_key).public_key
        accounts.append(
            DevAccount(
                index=i,
                address=account_address(account_class_hash, public_key),
                private_key=private_key,
                public_key=public_key,
            )
        )
    return accounts


def write_accounts_file(path: Path, accounts: list[DevAccount], chain_id: int) -> None:
    """Write ``accounts.json`` readable by its owner only (it holds private keys)."""
    body = {"chain_id": hex(chain_id), "accounts": [a.to_json() for a in accounts]}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=2)
    os.replace(tmp, path)


def read_accounts_file(path: Path) -> list[DevAccount]:
    body = json.loads(path.read_text())
    return [
        DevAccount(
            index=int(a["index"]),
            address=int(a["address"], 16),
            private_key=int(a["private_key"], 16),
            public_key=int(a["public_key"], 16),
        )
        for a in body["accounts"]
    ]
