"""``keiko chain deploy``: put Keiko's contracts on any Starknet node.

    keiko chain deploy --rpc http://127.0.0.1:5050/rpc --account 0x... --private-key 0x...

The account pays for the transactions and becomes the contracts' admin and the anchor's
first operator (give Keiko's translator the same account: ``KEIKO_CHAIN_ACCOUNT_ADDRESS``
and ``KEIKO_CHAIN_PRIVATE_KEY``). The private key may also come from a file
(``--private-key-file``) or ``KEIKO_CHAIN_PRIVATE_KEY``, which keeps it out of the process
list. Running it again reuses everything already declared or deployed.

Writes ``deployment.json`` (default ``$KEIKO_DATA_DIR/chain/deployment.json``, where
Keiko's services look for it; or ``--out``). Then ``KEIKO_CHAIN_RPC_URL=<rpc> keiko serve``
runs Keiko against that chain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

import aiohttp
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.signer.key_pair import KeyPair

from chain.client.signer import FastStarkSigner
from chain.deploy.deployer import STRK_ADDRESS, UDC_ADDRESS, DeployError, deploy_keiko
from chain.node.genesis import write_json_atomic
from chain.vm import BUILD_DIR

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ENV_PRIVATE_KEY = "KEIKO_CHAIN_PRIVATE_KEY"


def _felt(text: str) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keiko chain deploy",
        description="Declare and deploy Keiko's contracts on a Starknet node (idempotent).",
    )
    parser.add_argument("--rpc", required=True, help="Starknet JSON-RPC 0.10 URL")
    parser.add_argument("--account", required=True, type=_felt, help="paying account address")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--private-key", type=_felt, help="the account's Stark private key")
    key.add_argument("--private-key-file", type=Path, help="file holding the private key")
    default_out = Path(os.environ.get("KEIKO_DATA_DIR") or ".data") / "chain" / "deployment.json"
    parser.add_argument("--out", type=Path, default=default_out, help="deployment.json to write")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="compiled contracts")
    parser.add_argument("--udc", type=_felt, default=UDC_ADDRESS, help="Universal Deployer address")
    parser.add_argument("--fee-token", type=_felt, default=STRK_ADDRESS, help="STRK token address")
    return parser


def _private_key(args: argparse.Namespace) -> int | None:
    if args.private_key is not None:
        return int(args.private_key)
    if args.private_key_file is not None:
        return _felt(args.private_key_file.read_text().strip())
    text = os.environ.get(ENV_PRIVATE_KEY, "").strip()
    return _felt(text) if text else None


async def run(args: argparse.Namespace, key: int, out: TextIO) -> int:
    async with aiohttp.ClientSession() as session:
        client = FullNodeClient(node_url=args.rpc, session=session)
        chain_id = int(await client.get_chain_id(), 16)
        account = Account(
            address=args.account,
            client=client,
            signer=FastStarkSigner(args.account, KeyPair.from_private_key(key), chain_id),
        )
        report = await deploy_keiko(
            account,
            build_dir=args.build_dir,
            udc=args.udc,
            fee_token=args.fee_token,
            say=lambda line: print(line, file=out, flush=True),
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, {**report.deployment, "rpc_url": args.rpc})
    print(
        f"deployment written to {args.out} ({len(report.declared)} declared, "
        f"{len(report.deployed)} deployed, {len(report.tx_hashes)} transactions)",
        file=out,
    )
    print(f"run Keiko on it: KEIKO_CHAIN_RPC_URL={args.rpc} keiko serve", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    key = _private_key(args)
    if key is None:
        print(
            f"error: give --private-key, --private-key-file or {ENV_PRIVATE_KEY}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        return asyncio.run(run(args, key, out))
    except (DeployError, ClientError, aiohttp.ClientError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
