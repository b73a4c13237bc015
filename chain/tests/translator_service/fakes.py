"""TEST DOUBLE: an in-memory interaction_anchor with the :class:`AnchorChain` interface
and its key directory (:class:`~chain.translator.key_directory.KeyDirectoryChain`).

It enforces the contract's rules that matter to the engine (a batch id and a root are
anchored once, the leaf count is non-zero; a key binds once, to one holder), numbers
blocks, emits ``BatchAnchored`` events and pages them with continuation tokens. Faults:
``down`` (every call raises a connection error) and ``lose_ack`` (the next send is
applied, then its answer is lost); ``receipt_events=False`` leaves the ``BatchAnchored``
event out of receipts, so only the watcher confirms.

Fees as the dev node charges them: an ``anchor_batch`` uses ``BASE_GAS + gas_per_leaf x
leaves`` L2 gas at ``l2_price``. A send without resource bounds is estimated first (as
:class:`~chain.client.KeikoChain` does); one with bounds below the price is refused
(TransactionRejected 53) and one whose gas exceeds them is included as REVERTED.
``estimates`` counts the estimations the node ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starknet_py.net.client_models import (
    EstimatedFee,
    PriceUnit,
    ResourceBounds,
    ResourceBoundsMapping,
)

from chain.client import (
    AnchoredBatch,
    ChainEvent,
    EventPage,
    ExecutionFailed,
    KeyBinding,
    KeyRegistration,
    TransactionRejected,
    TxResult,
)
from chain.translator.felts import encode_short_string


class ChainDown(ConnectionRefusedError):
    pass


BASE_GAS = 100_000


@dataclass
class FakeAnchorChain:
    operator: int = 0x0A11CE
    down: bool = False
    lose_ack: bool = False
    block: int = 0
    batches: dict[int, AnchoredBatch] = field(default_factory=dict)
    roots: set[int] = field(default_factory=set)
    log: list[ChainEvent] = field(default_factory=list)
    sends: int = 0
    applied: int = 0
    checks: int = 0  # get_batch calls
    keys: dict[bytes, KeyBinding] = field(default_factory=dict)
    key_sends: int = 0
    estimates: int = 0
    refused: int = 0  # sends refused for their resource bounds
    gas_per_leaf: int = 0
    l2_price: int = 100_000
    # False: receipts carry no decoded event (as from a node whose anchor address the
    # client does not decode), so only the watcher can confirm a batch.
    receipt_events: bool = True

    def _check(self) -> None:
        if self.down:
            raise ChainDown("connection refused (fake chain is down)")

    def _reverts(self, batch_id: int, root: int, leaf_count: int) -> str | None:
        if batch_id in self.batches:
            return "batch id already used"
        if root in self.roots:
            return "root already anchored"
        return "zero leaf count" if leaf_count == 0 else None

    def _gas(self, leaf_count: int) -> int:
        return BASE_GAS + self.gas_per_leaf * leaf_count

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee:
        self._check()
        self.estimates += 1
        reason = self._reverts(batch_id, root, leaf_count)
        if reason is not None:
            raise ExecutionFailed(reason)
        gas = self._gas(leaf_count)
        return EstimatedFee(
            l1_gas_consumed=0,
            l1_gas_price=1,
            l2_gas_consumed=gas,
            l2_gas_price=self.l2_price,
            l1_data_gas_consumed=0,
            l1_data_gas_price=1,
            overall_fee=gas * self.l2_price,
            unit=PriceUnit.FRI,
        )

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        self._check()
        if resource_bounds is None:
            await self.estimate_anchor_batch(batch_id, root, leaf_count, domain)
            resource_bounds = ResourceBoundsMapping(
                l1_gas=ResourceBounds(0, 1),
                l2_gas=ResourceBounds(self._gas(leaf_count), self.l2_price),
                l1_data_gas=ResourceBounds(0, 1),
            )
        if resource_bounds.l2_gas.max_price_per_unit < self.l2_price:
            self.refused += 1
            raise TransactionRejected(53, "Insufficient resources for validate", "L2 gas price")
        self.sends += 1
        tx_hash = 0x7000 + self.sends
        self.block += 1
        reason = self._reverts(batch_id, root, leaf_count)
        gas = self._gas(leaf_count)
        if reason is None and gas > resource_bounds.l2_gas.max_amount:
            reason = f"Insufficient max L2Gas: max amount: {resource_bounds.l2_gas.max_amount}"
        if reason is not None:
            return TxResult(tx_hash, self.block, "REVERTED", reason, 1)
        domain_felt = encode_short_string(domain) if isinstance(domain, str) else domain
        self.batches[batch_id] = AnchoredBatch(
            batch_id, root, leaf_count, str(domain), self.operator, self.block, 1_700_000_000
        )
        self.roots.add(root)
        self.applied += 1
        event = ChainEvent(
            contract="interaction_anchor",
            name="BatchAnchored",
            from_address=0xA,
            values={
                "batch_id": batch_id,
                "root": root,
                "leaf_count": leaf_count,
                "domain": domain_felt,
                "operator": self.operator,
            },
            keys=[1, batch_id, root],
            data=[leaf_count, domain_felt, self.operator],
            block_number=self.block,
            tx_hash=tx_hash,
        )
        self.log.append(event)
        if self.lose_ack:
            self.lose_ack = False
            raise TimeoutError("the receipt never came back (fake lost ack)")
        return TxResult(
            tx_hash, self.block, "SUCCEEDED", None, 1, [event] if self.receipt_events else []
        )

    async def get_batch(self, batch_id: int) -> AnchoredBatch | None:
        self._check()
        self.checks += 1
        return self.batches.get(batch_id)

    async def is_root_anchored(self, root: int) -> bool:
        self._check()
        return root in self.roots

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
        self._check()
        top = self.block if to_block is None or isinstance(to_block, str) else to_block
        matching = [
            e
            for e in self.log
            if (name is None or e.name == name)
            and e.block_number is not None
            and from_block <= e.block_number <= top
            and (not keys or all(not k or e.keys[i + 1] in k for i, k in enumerate(keys)))
        ]
        start = int(continuation_token or 0)
        page = matching[start : start + chunk_size]
        nxt = start + chunk_size
        return EventPage(page, str(nxt) if nxt < len(matching) else None)

    async def block_number(self) -> int:
        self._check()
        return self.block

    # -- key directory --------------------------------------------------------------------

    async def register_keys(self, keys: list[KeyRegistration]) -> TxResult:
        self._check()
        for k in keys:  # the contract checks every entry before any takes effect
            known = self.keys.get(k.public_key)
            if known is not None and known.subject != k.subject:
                raise ExecutionFailed("key bound to another holder")
            if known is not None and known.kind != k.kind:
                raise ExecutionFailed("key bound with another kind")
        self.key_sends += 1
        self.block += 1
        tx_hash = 0x9000 + self.key_sends
        events = []
        for k in keys:
            if k.public_key in self.keys:
                continue  # a retry: a no-op
            self.keys[k.public_key] = KeyBinding(
                k.public_key, k.subject, k.kind, self.operator, self.block, False, 0
            )
            events.append(
                ChainEvent(
                    contract="interaction_anchor",
                    name="KeyRegistered",
                    from_address=0xA,
                    values={
                        "subject": k.subject,
                        "key": int.from_bytes(k.public_key, "big"),
                        "kind": encode_short_string(k.kind),
                        "operator": self.operator,
                    },
                    keys=[2, k.subject],
                    data=[],
                    block_number=self.block,
                    tx_hash=tx_hash,
                )
            )
        if self.lose_ack:
            self.lose_ack = False
            raise TimeoutError("the receipt never came back (fake lost ack)")
        return TxResult(tx_hash, self.block, "SUCCEEDED", None, 1, events)

    async def get_key(self, public_key: bytes) -> KeyBinding | None:
        self._check()
        return self.keys.get(public_key)
