"""What the verifier needs from Keikochain, an adapter and an in-memory reader.

The real reader is the chain client's ``interaction_anchor`` binding
(``chain.client.contracts.AnchorContract``, starknet-py against any JSON-RPC endpoint):
wrap it in :class:`AnchorContractReader` to get an :class:`AsyncChainReader`. Its
``get_batch`` must return None for an unknown batch id (the contract panics with
``'unknown batch'``), never raise; so must ``anchor_transaction`` for a transaction hash
the chain does not know, and ``key_binding`` for a key the contract's key directory does
not hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from chain.translator.ports import BATCH_ANCHORED

if TYPE_CHECKING:
    from chain.client.core import TxResult


class BatchInfo(NamedTuple):
    """A batch as recorded on chain: ``(root, leaf_count, domain, block)``.

    ``domain`` is the Cairo short-string felt (or its decoded text).
    """

    root: int
    leaf_count: int
    domain: int | str
    block: int


class AnchorTransaction(NamedTuple):
    """A transaction as the chain's receipt tells it: its block, whether it succeeded,
    and the ``(batch_id, root)`` of each ``BatchAnchored`` event the anchor contract
    emitted in it."""

    block: int
    succeeded: bool
    anchors: frozenset[tuple[int, int]]


# Starknet JSON-RPC error: the contract has no such entry point.
ENTRYPOINT_NOT_FOUND = 21


class NoKeyDirectory(Exception):
    """The anchor contract on this chain predates the key directory (it has no
    ``get_key``): whose key signed an entry cannot be looked up there."""


class KeyInfo(NamedTuple):
    """A signing key's binding in the anchor contract's key directory: the holder's
    subject felt (:func:`chain.translator.authors.subject_of`), the custody kind
    ('custodial', 'device', 'service'), the block that bound it and, once revoked, the
    block that revoked it."""

    subject: int
    kind: str
    block: int
    revoked_block: int | None = None


@runtime_checkable
class ChainReader(Protocol):
    def is_root_anchored(self, root: int) -> bool: ...

    def get_batch(self, batch_id: int) -> BatchInfo | tuple[int, int, int | str, int] | None:
        """The anchored batch, or None if no batch has this id."""
        ...

    def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        """The transaction's receipt, or None if the chain has no such transaction."""
        ...

    def key_binding(self, public_key: bytes) -> KeyInfo | None:
        """The key's binding in the key directory, or None if it holds no such key;
        raises :class:`NoKeyDirectory` on a chain whose contract has no directory."""
        ...


@runtime_checkable
class AsyncChainReader(Protocol):
    async def is_root_anchored(self, root: int) -> bool: ...

    async def get_batch(
        self, batch_id: int
    ) -> BatchInfo | tuple[int, int, int | str, int] | None: ...

    async def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None: ...

    async def key_binding(self, public_key: bytes) -> KeyInfo | None: ...


class InMemoryChainReader:
    """A dict-backed :class:`ChainReader` (tests, demos). Counts its reads."""

    def __init__(self, batches: Iterable[tuple[int, BatchInfo, int]] = ()) -> None:
        self._batches: dict[int, BatchInfo] = {}
        self._roots: set[int] = set()
        self._transactions: dict[int, AnchorTransaction] = {}
        self._keys: dict[bytes, KeyInfo] = {}
        self.reads = 0
        for batch_id, info, tx_hash in batches:
            self.add_batch(batch_id, info, tx_hash)

    def add_batch(self, batch_id: int, info: BatchInfo, tx_hash: int | None = None) -> None:
        """Record the batch, and with ``tx_hash`` a successful transaction in its block
        that anchored it (added to that transaction's anchors if it is known)."""
        self._batches[batch_id] = info
        self._roots.add(info.root)
        if tx_hash is not None:
            known = self._transactions.get(tx_hash)
            anchors = (known.anchors if known else frozenset()) | {(batch_id, info.root)}
            self._transactions[tx_hash] = AnchorTransaction(info.block, True, anchors)

    def add_transaction(self, tx_hash: int, transaction: AnchorTransaction) -> None:
        self._transactions[tx_hash] = transaction

    def bind_key(self, public_key: bytes, info: KeyInfo) -> None:
        self._keys[bytes(public_key)] = info

    def is_root_anchored(self, root: int) -> bool:
        self.reads += 1
        return root in self._roots

    def get_batch(self, batch_id: int) -> BatchInfo | None:
        self.reads += 1
        return self._batches.get(batch_id)

    def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        self.reads += 1
        return self._transactions.get(tx_hash)

    def key_binding(self, public_key: bytes) -> KeyInfo | None:
        self.reads += 1
        return self._keys.get(bytes(public_key))


class _AnchorViews(Protocol):
    """The part of the chain client's anchor binding the adapter uses."""

    @property
    def address(self) -> int: ...

    async def get_batch(self, batch_id: int) -> Any: ...

    async def is_root_anchored(self, root: int) -> bool: ...

    async def transaction_events(self, tx_hash: int) -> TxResult | None: ...

    async def get_key(self, public_key: bytes) -> Any: ...


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

    async def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        tx = await self._contract.transaction_events(tx_hash)
        if tx is None or tx.block_number is None:  # unknown, or not in a block yet
            return None
        anchors = frozenset(
            (int(event["batch_id"]), int(event["root"]))
            for event in tx.events
            if event.name == BATCH_ANCHORED and event.from_address == self._contract.address
        )
        return AnchorTransaction(tx.block_number, tx.status == "SUCCEEDED", anchors)

    async def key_binding(self, public_key: bytes) -> KeyInfo | None:
        from chain.client import TransactionRejected

        try:
            binding = await self._contract.get_key(public_key)
        except TransactionRejected as err:
            if err.code == ENTRYPOINT_NOT_FOUND:
                raise NoKeyDirectory(str(err)) from None
            raise
        if binding is None:
            return None
        return KeyInfo(
            subject=int(binding.subject),
            kind=str(binding.kind),
            block=int(binding.registered_block),
            revoked_block=int(binding.revoked_block) if binding.revoked else None,
        )
