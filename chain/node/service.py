"""Open (or create) a dev chain in a data directory and serve it over HTTP.

``main(argv)`` is ``keiko chain node`` / ``python -m chain.node``::

    python -m chain.node --data-dir .keiko/chain --host 127.0.0.1 --port 5050 --accounts 10

Files in the data directory: ``chain.sqlite3`` (the chain), ``accounts.json`` (dev
account keys, mode 0600), ``deployment.json`` (contract addresses and class hashes).
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from chain.node import snapshots
from chain.node.accounts import DEFAULT_SEED, DevAccount, derive_accounts, write_accounts_file
from chain.node.blocks import SEQUENCER_ADDRESS, commit_genesis
from chain.node.config import (
    ACCOUNTS_FILE,
    DEFAULT_ACCOUNTS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEPLOYMENT_FILE,
)
from chain.node.genesis import deploy_keiko_genesis, write_json_atomic
from chain.node.node import DATABASE_FILE, DevNode, open_store
from chain.node.system import (
    ACCOUNT,
    INITIAL_BALANCE,
    STRK_ADDRESS,
    UDC_ADDRESS,
    build_system_genesis,
    minter_account,
)
from chain.vm import BUILD_DIR, DEFAULT_CHAIN_ID, BlockContext, CairoVM

log = logging.getLogger("keikochain")

EXIT_PORT_IN_USE = 3


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    accounts: int = DEFAULT_ACCOUNTS
    seed: str = DEFAULT_SEED
    chain_id: int = DEFAULT_CHAIN_ID
    build_dir: Path = BUILD_DIR
    # False: genesis holds the system contracts and dev accounts only (a chain to run
    # `keiko chain deploy` against).
    keiko_contracts: bool = True


@dataclass
class OpenedNode:
    node: DevNode
    accounts: list[DevAccount]
    deployment: dict[str, Any]
    created: bool


def open_node(config: NodeConfig) -> OpenedNode:
    """Load the chain from ``config.data_dir``, running genesis first if it is empty.

    Must be called on the thread that will run the node (SQLite connections are
    per thread)."""
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / DATABASE_FILE
    snapshot = snapshots.snapshot_key(
        config.build_dir,
        config.chain_id,
        f"{config.seed}:{'keiko' if config.keiko_contracts else 'empty'}",
        config.accounts,
    )
    fresh = not database.exists()
    from_snapshot = fresh and snapshots.restore(snapshot, database)
    store = open_store(data_dir)
    created = store.latest_block_number() is None
    if created:
        timestamp = int(time.time())
        vm = CairoVM(
            chain_id=config.chain_id,
            block=BlockContext(0, timestamp, SEQUENCER_ADDRESS),
        )
        system = build_system_genesis(vm, config.build_dir, config.accounts, config.seed)
        store.set_meta("chain_id", hex(config.chain_id))
        store.set_meta("seed", config.seed)
        store.set_meta("accounts", str(config.accounts))
        commit_genesis(store, system.diff, timestamp)
        accounts, minter = system.accounts, system.minter
        node = DevNode(store, vm, chain_id=config.chain_id, predeployed=accounts, minter=minter)
        if config.keiko_contracts:
            deployment = deploy_keiko_genesis(node, accounts[0], config.build_dir).deployment
        else:
            deployment = {
                "chain_id": hex(config.chain_id),
                "account_class_hash": hex(system.class_hashes[ACCOUNT]),
                "contracts": {},
            }
        store.set_meta("deployment", json.dumps(deployment))
        snapshots.save(snapshot, database)
    else:
        chain_id = int(store.get_meta("chain_id") or hex(config.chain_id), 16)
        if chain_id != config.chain_id:
            raise SystemExit(f"{data_dir} holds chain {hex(chain_id)}, not {hex(config.chain_id)}")
        deployment = json.loads(store.get_meta("deployment") or "{}")
        seed = store.get_meta("seed") or config.seed
        count = int(store.get_meta("accounts") or config.accounts)
        account_class = int(deployment["account_class_hash"], 16)
        accounts = derive_accounts(seed, count, account_class)
        minter = minter_account(seed, account_class)
        vm = CairoVM(DevNode.vm_state_from_store(store), chain_id=chain_id)
        node = DevNode(store, vm, chain_id=chain_id, predeployed=accounts, minter=minter)
    write_accounts_file(data_dir / ACCOUNTS_FILE, accounts, config.chain_id)
    write_json_atomic(
        data_dir / DEPLOYMENT_FILE,
        {**deployment, "genesis_block_hash": hex(_genesis_hash(node))},
    )
    return OpenedNode(
        node=node, accounts=accounts, deployment=deployment, created=created or from_snapshot
    )


def _genesis_hash(node: DevNode) -> int:
    block = node.store.block_by_number(0)
    assert block is not None
    return block.hash


def print_banner(opened: OpenedNode, config: NodeConfig, out: TextIO) -> None:
    """The devnet-style start banner. It prints the dev accounts' private keys: they
    are local development keys, also in accounts.json, and worthless elsewhere."""
    node = opened.node
    lines = [
        f"Keikochain dev node: chain id {hex(node.chain_id)}, "
        f"{'new chain' if opened.created else 'resumed'} at block {node.latest_block_number()}",
        f"data dir: {config.data_dir.resolve()}",
        "",
        "Predeployed accounts (development keys, never use them elsewhere):",
    ]
    for account in opened.accounts:
        lines += [
            f"  #{account.index} address     {hex(account.address)}",
            f"     private key {hex(account.private_key)}",
            f"     public key  {hex(account.public_key)}",
        ]
    lines += [
        "",
        f"Initial balance of each account: {INITIAL_BALANCE} FRI (STRK), "
        f"{INITIAL_BALANCE} WEI (ETH)",
        f"Fee token STRK {hex(STRK_ADDRESS)}; Universal Deployer {hex(UDC_ADDRESS)}",
        "",
        "Contracts:",
    ]
    for name, info in opened.deployment.get("contracts", {}).items():
        lines.append(f"  {name:<20} {info['address']}")
    lines += [
        f"  {ACCOUNT + ' class':<20} {opened.deployment.get('account_class_hash')}",
        "",
        f"Starknet JSON-RPC 0.10 on http://{config.host}:{config.port}/rpc, "
        f"WebSocket on ws://{config.host}:{config.port}/ws",
    ]
    print("\n".join(lines), file=out, flush=True)


class PortInUse(RuntimeError):
    pass


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any genesis work: a port already taken fails
    at once, loudly, instead of after seconds of genesis and a printed banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve(
    config: NodeConfig, out: TextIO = sys.stdout, sock: socket.socket | None = None
) -> None:
    """Open the chain on its own worker thread and serve JSON-RPC until cancelled."""
    from chain.node.server import create_app

    sock = sock or bind_socket(config.host, config.port)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keikochain")
    loop = asyncio.get_running_loop()
    try:
        opened = await loop.run_in_executor(executor, open_node, config)
        print_banner(opened, config, out)
        app = create_app(opened.node, executor)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                # Longer than clients' idle keep-alive (aiohttp: 15 s), so that the
                # client closes idle connections first and never reuses one the server
                # is closing (ServerDisconnectedError on the next request).
                timeout_keep_alive=75,
            )
        )
        _absorb_replayed_signals()
        await server.serve(sockets=[sock])
        await loop.run_in_executor(executor, opened.node.store.close)
    finally:
        executor.shutdown(wait=True)
        sock.close()


def _absorb_replayed_signals() -> None:
    """uvicorn handles SIGINT/SIGTERM itself (graceful shutdown), then re-raises the
    signal to the handler that was installed before it. Make that handler a no-op so
    the node closes its database and exits with status 0."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)


def parse_args(argv: list[str] | None) -> NodeConfig:
    parser = argparse.ArgumentParser(
        prog="keiko chain node", description="Run the Keikochain dev node (Starknet JSON-RPC)."
    )
    env = os.environ
    data_root = Path(env.get("KEIKO_DATA_DIR") or ".data")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data_root / "chain",
        help="chain database, accounts.json and deployment.json (created if empty); "
        "default $KEIKO_DATA_DIR/chain",
    )
    parser.add_argument(
        "--host",
        default=env.get("KEIKO_CHAIN_NODE_HOST") or DEFAULT_HOST,
        help="listen address (default $KEIKO_CHAIN_NODE_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("KEIKO_CHAIN_NODE_PORT") or DEFAULT_PORT),
        help="listen port (default $KEIKO_CHAIN_NODE_PORT or 5050)",
    )
    parser.add_argument(
        "--accounts", type=int, default=DEFAULT_ACCOUNTS, help="predeployed accounts at genesis"
    )
    parser.add_argument("--seed", default=DEFAULT_SEED, help="seed of the dev account keys")
    parser.add_argument(
        "--no-keiko-contracts",
        action="store_true",
        help="genesis without Keiko's contracts (deploy them with `keiko chain deploy`)",
    )
    parser.add_argument(
        "--chain-id",
        default=hex(DEFAULT_CHAIN_ID),
        help="chain id, hex felt or short string (default KEIKOCHAIN_DEV)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_DIR,
        help="compiled contracts for genesis (a resumed chain keeps its own classes)",
    )
    ns = parser.parse_args(argv)
    chain_id_arg: str = ns.chain_id
    chain_id = (
        int(chain_id_arg, 16)
        if chain_id_arg.lower().startswith("0x")
        else int.from_bytes(chain_id_arg.encode("ascii"), "big")
    )
    if ns.accounts < 1:
        parser.error("--accounts must be at least 1")
    return NodeConfig(
        data_dir=ns.data_dir,
        host=ns.host,
        port=ns.port,
        accounts=ns.accounts,
        seed=ns.seed,
        chain_id=chain_id,
        build_dir=ns.build_dir,
        keiko_contracts=not ns.no_keiko_contracts,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        sock = bind_socket(config.host, config.port)
    except PortInUse as exc:
        print(f"keikochain: {exc}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, sock=sock))
    return 0
