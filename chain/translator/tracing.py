"""The translator's spans (services.kit.tracing): an anchored batch joins the traces of
the records it carries.

The intake handles each event under a CONSUMER span in its producer's trace (a
``recordInteraction`` call's, say) and notes that span for the record it queued. When the
engine sends a batch, :class:`TracedAnchorChain` opens an ``anchor batch`` span whose
parent is the first of its records' spans, linked to every one of them; the JSON-RPC
calls to the node (chain.client.tracing) are its children. So one trace runs from the
gateway to the node, and every other record of the batch links to it. Notes are kept in
this process (bounded): a record queued by another replica's intake starts no link.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from starknet_py.net.client_models import ResourceBoundsMapping

from chain.client import TxResult
from chain.translator.ports import AnchorChain
from chain.translator.storage import ChainStore
from services.kit import tracing

_MAX_NOTES = 50_000


class QueuedTraces:
    """Which span queued each record: (domain, record id) -> traceparent."""

    def __init__(self, limit: int = _MAX_NOTES) -> None:
        self.limit = limit
        self._notes: OrderedDict[tuple[str, str], str] = OrderedDict()

    def note(self, domain: str, record_id: str, traceparent: str = "") -> None:
        """Note the current span (or ``traceparent``, a span of the record's trace named
        by a caller that queues the records of several traces at once)."""
        traceparent = traceparent or tracing.current_traceparent()
        if not traceparent:
            return
        self._notes[(domain, record_id)] = traceparent
        while len(self._notes) > self.limit:
            self._notes.popitem(last=False)

    def take(self, domain: str, record_id: str) -> str:
        return self._notes.pop((domain, record_id), "")


QUEUED = QueuedTraces()


class TracedAnchorChain:
    """An :class:`AnchorChain` whose ``anchor_batch`` runs under a span in its records'
    traces; every other call passes through."""

    def __init__(self, inner: AnchorChain, store: ChainStore, queued: QueuedTraces = QUEUED):
        self._inner = inner
        self._store = store
        self._queued = queued

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        records = await self._store.records_of_batch(batch_id)
        taken = (self._queued.take(str(domain), record.record_id) for record in records)
        contexts = [c for t in taken if (c := tracing.span_context_of(t)) is not None]
        parent = tracing.parent_from_span_context(contexts[0]) if contexts else None
        with tracing.span(
            "anchor batch",
            parent=parent,
            links=[tracing.Link(c) for c in contexts],
            attributes={
                "keiko.batch_id": hex(batch_id),
                "keiko.batch.leaves": leaf_count,
                "keiko.batch.domain": str(domain),
            },
        ):
            return await self._inner.anchor_batch(
                batch_id, root, leaf_count, domain, resource_bounds=resource_bounds
            )


def traced(chain: AnchorChain, store: ChainStore) -> AnchorChain:
    """``chain`` traced when tracing is on (off: ``chain`` itself)."""
    if not tracing.enabled():
        return chain
    traced_chain: Any = TracedAnchorChain(chain, store)
    return traced_chain  # type: ignore[no-any-return]
