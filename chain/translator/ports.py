"""How the translator reaches Keikochain: the narrow interface the engine and watcher use,
its implementation over the typed client (:mod:`chain.client`), and where the account and
deployment come from.

:class:`AnchorChain` mirrors the parts of :class:`chain.client.AnchorContract` the
anchoring pipeline calls (``anchor_batch``, ``estimate_anchor_batch``, ``get_batch``,
``events``, ``is_root_anchored``) plus ``block_number``. Tests substitute an in-memory double.

:class:`ChainConnection` connects lazily and reconnects after a failure, so the
translator starts (and queues records) while the chain node is down; chain calls then
fail fast and the engine's backoff and circuit breaker take over.

Configuration (:func:`chain_config_from_env`), by precedence:

* RPC URL: ``KEIKO_CHAIN_RPC_URL`` (``Settings.chain_rpc_url``), else the embedded node the
  platform starts at ``http://<chain_node_host>:<chain_node_port>/rpc``.
* Account: ``KEIKO_CHAIN_ACCOUNT_ADDRESS`` + ``KEIKO_CHAIN_PRIVATE_KEY`` (hex), else
  account 0 of ``<data dir>/chain/accounts.json`` (the dev node's genesis operator).
* Deployment: ``KEIKO_CHAIN_DEPLOYMENT_FILE``, else ``<data dir>/chain/deployment.json``.
* Learners register and vote from accounts of their own, deployed for them
  (:mod:`chain.translator.learner_accounts`), funded by this account.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starknet_py.net.client_models import EstimatedFee, ResourceBoundsMapping

from chain.client import (
    AnchoredBatch,
    Deployment,
    EventPage,
    KeikoChain,
    KeyBinding,
    KeyRegistration,
    TxResult,
)
from services.kit.errors import FailedPrecondition, Unavailable

ENV_ACCOUNT_ADDRESS = "KEIKO_CHAIN_ACCOUNT_ADDRESS"
ENV_PRIVATE_KEY = "KEIKO_CHAIN_PRIVATE_KEY"
ENV_DEPLOYMENT_FILE = "KEIKO_CHAIN_DEPLOYMENT_FILE"
BATCH_ANCHORED = "BatchAnchored"


class AnchorChain(Protocol):
    """What the anchoring engine and the watcher need from the chain."""

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult: ...

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee: ...

    async def get_batch(self, batch_id: int) -> AnchoredBatch | None: ...

    async def is_root_anchored(self, root: int) -> bool: ...

    async def events(
        self,
        name: str | None = None,
        *,
        keys: list[list[int]] | None = None,
        from_block: int = 0,
        to_block: int | str | None = None,
        chunk_size: int = 100,
        continuation_token: str | None = None,
    ) -> EventPage: ...

    async def block_number(self) -> int: ...


@dataclass(frozen=True)
class ChainAccount:
    address: int
    private_key: int = field(repr=False)


@dataclass(frozen=True)
class ChainConfig:
    rpc_url: str
    account: ChainAccount | None
    deployment_file: Path


def _int(text: str) -> int:
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _dev_accounts(path: Path) -> list[ChainAccount]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text())
    items = raw.get("accounts", raw) if isinstance(raw, Mapping) else raw
    out = []
    for item in sorted(items, key=lambda a: int(a.get("index", 0))):
        out.append(ChainAccount(_int(str(item["address"])), _int(str(item["private_key"]))))
    return out


def chain_config_from_env(
    *,
    data_dir: Path,
    rpc_url: str = "",
    node_host: str = "127.0.0.1",
    node_port: int = 5050,
    environ: Mapping[str, str] | None = None,
) -> ChainConfig:
    """See the module docstring. The account may be None when neither the environment
    nor a dev node's accounts file provides one (chain writes then fail clearly)."""
    env = os.environ if environ is None else environ
    chain_dir = data_dir / "chain"
    url = rpc_url or f"http://{node_host}:{node_port}/rpc"
    deployment = Path(env.get(ENV_DEPLOYMENT_FILE) or chain_dir / "deployment.json")
    dev = _dev_accounts(chain_dir / "accounts.json")
    account: ChainAccount | None = None
    if env.get(ENV_ACCOUNT_ADDRESS) and env.get(ENV_PRIVATE_KEY):
        account = ChainAccount(_int(env[ENV_ACCOUNT_ADDRESS]), _int(env[ENV_PRIVATE_KEY]))
    elif dev:
        account = dev[0]
    return ChainConfig(url, account, deployment)


class ChainConnection:
    """A lazily connected :class:`KeikoChain` for one account; ``reset()`` after a
    transport failure makes the next call reconnect."""

    def __init__(
        self,
        rpc_url: str,
        account: ChainAccount | None,
        deployment_file: Path,
        *,
        poll_interval: float = 0.05,
        connect_timeout: float = 10.0,
    ) -> None:
        self.rpc_url = rpc_url
        self.account = account
        self.deployment_file = deployment_file
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self._chain: KeikoChain | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> KeikoChain:
        if self._chain is not None:
            return self._chain
        async with self._lock:
            if self._chain is None:
                if self.account is None:
                    raise FailedPrecondition(
                        "no chain account configured: set KEIKO_CHAIN_ACCOUNT_ADDRESS and "
                        "KEIKO_CHAIN_PRIVATE_KEY"
                    )
                if not self.deployment_file.exists():
                    raise Unavailable(f"no chain deployment file at {self.deployment_file}")
                self._chain = await asyncio.wait_for(
                    KeikoChain.connect(
                        self.rpc_url,
                        self.account.address,
                        self.account.private_key,
                        self.deployment_file,
                        poll_interval=self.poll_interval,
                    ),
                    self.connect_timeout,
                )
            return self._chain

    async def reset(self) -> None:
        async with self._lock:
            chain, self._chain = self._chain, None
        if chain is not None:
            await chain.close()

    async def close(self) -> None:
        await self.reset()

    def deployment(self) -> Deployment | None:
        if not self.deployment_file.exists():
            return None
        return Deployment.from_file(self.deployment_file)


class ClientAnchorChain:
    """:class:`AnchorChain` over a :class:`ChainConnection` (the real chain)."""

    def __init__(self, connection: ChainConnection) -> None:
        self.connection = connection

    async def _call(self, fn: Any) -> Any:
        try:
            return await fn(await self.connection.get())
        except (OSError, TimeoutError):
            await self.connection.reset()
            raise
        except Exception as exc:
            # aiohttp's errors are not all OSErrors; a broken session must be replaced.
            if type(exc).__module__.startswith("aiohttp"):
                await self.connection.reset()
            raise

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        result: TxResult = await self._call(
            lambda c: c.anchor.anchor_batch(
                batch_id, root, leaf_count, domain, resource_bounds=resource_bounds
            )
        )
        return result

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee:
        estimate: EstimatedFee = await self._call(
            lambda c: c.anchor.estimate_anchor_batch(batch_id, root, leaf_count, domain)
        )
        return estimate

    async def get_batch(self, batch_id: int) -> AnchoredBatch | None:
        result: AnchoredBatch | None = await self._call(lambda c: c.anchor.get_batch(batch_id))
        return result

    async def is_root_anchored(self, root: int) -> bool:
        return bool(await self._call(lambda c: c.anchor.is_root_anchored(root)))

    async def events(
        self,
        name: str | None = None,
        *,
        keys: list[list[int]] | None = None,
        from_block: int = 0,
        to_block: int | str | None = None,
        chunk_size: int = 100,
        continuation_token: str | None = None,
    ) -> EventPage:
        page: EventPage = await self._call(
            lambda c: c.anchor.events(
                name,
                keys=keys,
                from_block=from_block,
                to_block=to_block,
                chunk_size=chunk_size,
                continuation_token=continuation_token,
            )
        )
        return page

    async def block_number(self) -> int:
        return int(await self._call(lambda c: c.block_number()))

    # -- key directory (chain.translator.key_directory.KeyDirectoryChain) ----------------

    async def register_keys(self, keys: list[KeyRegistration]) -> TxResult:
        result: TxResult = await self._call(lambda c: c.anchor.register_keys(keys))
        return result

    async def get_key(self, public_key: bytes) -> KeyBinding | None:
        binding: KeyBinding | None = await self._call(lambda c: c.anchor.get_key(public_key))
        return binding
