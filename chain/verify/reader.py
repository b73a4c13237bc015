"""What the verifier needs from Keikochain, an adapter and an in-memory reader.

The real reader is the chain client's ``interaction_anchor`` binding
(``chain.client.contracts.AnchorContract``, starknet-py against any JSON-RPC endpoint):
wrap it in :class:`AnchorContractReader` to get an :class:`AsyncChainReader`. Its
``get_batch`` must return None for an unknown batch id (the contract panics with
``'unknown batch'``), never raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable


class BatchInfo(NamedTuple):
    """A batch as recorded on chain: ``(root, leaf_count, domain, block)``.

    ``domain`` is the Cairo short-string felt (or its decoded text).
    """

    root: int
    leaf_count: int
    domain: int | str
    block: int


@runtime_checkable
class ChainReader(Protocol):
    def is_root_anchored(self, root: int) -> bool: ...

    def get_batch(self, batch_id: int) -> BatchInfo | tuple[int, int, int | str, int] | None:
        """The anchored batch, or None if no batch has this id."""
        ...


@runtime_checkable
class AsyncChainReader(Protocol):
    async def is_root_anchored(self, root: int) -> bool: ...

    async def get_batch(
        self, batch_id: int
    ) -> BatchInfo | tuple[int, int, int | str, int] | None: ...


class InMemoryChainReader:
    """A dict-backed :class:`ChainReader` (tests, demos). Counts its reads."""

    def __init__(self, batches: Iterable[tuple[int, BatchInfo]] = ()) -> None:
        self._batches: dict[int, BatchInfo] = {}
        self._roots: set[int] = set()
        self.reads = 0
        for batch_id, info in batches:
            self.add_batch(batch_id, info)

    def add_batch(self, batch_id: int, info: BatchInfo) -> None:
        self._batches[batch_id] = info
        self._roots.add(info.root)

    def is_root_anchored(self, root: int) -> bool:
        self.reads += 1
        return root in self._roots

    def get_batch(self, batch_id: int) -> BatchInfo | None:
        self.reads += 1
        return self._batches.get(batch_id)


class _AnchorViews(Protocol):
    """The part of the chain client's anchor binding the adapter uses."""

    async def get_batch(self, batch_id: int) -> Any: ...

    async def is_root_anchored(self, root: int) -> bool: ...


class AnchorContractReader:
    """:class:`AsyncChainReader` over the chain client's anchor contract binding, whose
    ``get_batch`` returns an object with ``root``, ``leaf_count``, ``domain`` and
    ``block_number`` attributes (``AnchoredBatch``), or None."""

    def __init__(self, contract: _AnchorViews) -> None:
        self._contract = contract

    async def is_root_anchored(self, root: int) -> bool:
        return bool(await self._contract.is_root_anchored(root))

    async def get_batch(self, batch_id: int) -> BatchInfo | None:
        batch = await self._contract.get_batch(batch_id)
        if batch is None:
            return None
        return BatchInfo(
            root=int(batch.root),
            leaf_count=int(batch.leaf_count),
            domain=batch.domain,
            block=int(batch.block_number),
        )
