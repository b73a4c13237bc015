"""Block 0 of a dev chain: what a Starknet network has before anyone sends a transaction.

As starknet-devnet predeploys them, block 0 holds the system contracts at their
well-known addresses and the prefunded dev accounts:

* the fee tokens: STRK (fri; what v3 transactions pay) and ETH (wei), instances of
  ``contracts/src/fee_token.cairo`` whose minter is the node's own minting account;
* the Universal Deployer Contract (``contracts/src/universal_deployer.cairo``);
* the minting account and ``N`` dev accounts (``contracts/src/account.cairo``, keys
  derived from the seed), each credited :data:`INITIAL_BALANCE` of both tokens by
  ``permissioned_mint`` calls executed in the Cairo VM.

Everything else, Keiko's own contracts included, arrives by real transactions afterwards
(:mod:`chain.node.genesis`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starknet_py.net.signer.key_pair import KeyPair

from chain.node.accounts import DevAccount, account_address, derive_accounts, derive_private_key
from chain.node.store import DeclaredClass, StateDiff
from chain.vm import CairoVM

ACCOUNT = "account"
FEE_TOKEN = "fee_token"
UDC = "universal_deployer"
SYSTEM_CLASSES = (ACCOUNT, FEE_TOKEN, UDC)

STRK_ADDRESS = 0x04718F5A0FC34CC1AF16A1CDEE98FFB20C31F5CD61D6AB07201858F4287C938D
ETH_ADDRESS = 0x049D36570D4E46F48E99674BD3FCC84644DDD6B96F7C741B1562B82F9E004DC7
UDC_ADDRESS = 0x02CEED65A4BD731034C01113685C831B01C15D7D432F71AFB1CF1634B53A2125
INITIAL_BALANCE = 10**21  # 1000 STRK (fri) / 1000 ETH (wei), as starknet-devnet
MINTER_INDEX = "minter"
TOKENS = {"FRI": STRK_ADDRESS, "WEI": ETH_ADDRESS}


def _short(text: str) -> int:
    return int.from_bytes(text.encode("ascii"), "big")


@dataclass(frozen=True)
class SystemGenesis:
    accounts: list[DevAccount]
    minter: DevAccount
    diff: StateDiff
    class_hashes: dict[str, int]


def minter_account(seed: str, account_class_hash: int) -> DevAccount:
    """The node's own account: mints for ``devnet_mint``, never given to anyone."""
    private_key = derive_private_key(f"{seed}:{MINTER_INDEX}", 0)
    public_key = KeyPair.from_private_key(private_key).public_key
    return DevAccount(
        index=-1,
        address=account_address(account_class_hash, public_key),
        private_key=private_key,
        public_key=public_key,
    )


def build_system_genesis(vm: CairoVM, build_dir: Path, n_accounts: int, seed: str) -> SystemGenesis:
    if n_accounts < 1:
        raise ValueError("genesis needs at least one account (account 0 deploys Keiko)")
    declared: list[DeclaredClass] = []
    hashes: dict[str, int] = {}
    for name in SYSTEM_CLASSES:
        sierra_path, casm_path = build_dir / f"{name}.sierra.json", build_dir / f"{name}.casm.json"
        if not sierra_path.exists() or not casm_path.exists():
            raise FileNotFoundError(f"{sierra_path} is missing: compile the contracts first")
        sierra: dict[str, Any] = json.loads(sierra_path.read_text())
        casm: dict[str, Any] = json.loads(casm_path.read_text())
        declared_hashes = vm.declare(sierra, casm)
        hashes[name] = declared_hashes.class_hash
        declared.append(
            DeclaredClass(
                declared_hashes.class_hash, declared_hashes.compiled_class_hash, sierra, casm
            )
        )
    account_class = hashes[ACCOUNT]
    minter = minter_account(seed, account_class)
    accounts = derive_accounts(seed, n_accounts, account_class)
    for account in (minter, *accounts):
        deployed = vm.deploy(account_class, [account.public_key], salt=account.public_key)
        assert deployed.address == account.address, "account address derivation mismatch"
    for address, symbol, name in (
        (STRK_ADDRESS, "STRK", "Starknet Token"),
        (ETH_ADDRESS, "ETH", "Ether"),
    ):
        vm.deploy(
            hashes[FEE_TOKEN],
            [_short(name), _short(symbol), 18, minter.address],
            at=address,
        )
        for account in (minter, *accounts):
            vm.call(
                address,
                "permissioned_mint",
                [account.address, INITIAL_BALANCE % 2**128, INITIAL_BALANCE // 2**128],
                caller_address=minter.address,
            )
    vm.deploy(hashes[UDC], [], at=UDC_ADDRESS)
    state = vm.state
    diff = StateDiff(
        storage={(a, k): v for a, slots in state.storage.items() for k, v in slots.items()},
        nonces={a: n for a, n in state.nonces.items() if n},
        class_hashes=dict(state.class_hashes),
        declared=declared,
    )
    return SystemGenesis(accounts=accounts, minter=minter, diff=diff, class_hashes=hashes)
