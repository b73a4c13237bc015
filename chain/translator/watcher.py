"""The chain watcher: confirms anchors from ``BatchAnchored`` events of interaction_anchor.

It reads the contract's events page by page (``starknet_getEvents`` with continuation
tokens) over a fixed block range ``[from_block, head]`` taken at the start of a scan, and
persists its cursor ``(from_block, to_block, continuation_token)`` in the same transaction
that applies a page (:meth:`ChainStore.apply_events`). A crash replays at most one page,
and confirming is idempotent, so every anchor is announced once. When a scan ends the
cursor moves to ``head + 1``.

For each event of a batch this translator sealed, with the same root, the batch and its
records become ANCHORED with the event's block and transaction hash, and the outbox
receives ``chain.batch_anchored`` and one ``chain.interaction_anchored`` per record.
Events of unknown batch ids (other deployments, manual anchors) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from chain.translator.metrics import BATCHES_CONFIRMED
from chain.translator.ports import BATCH_ANCHORED, AnchorChain
from chain.translator.storage import AnchorConfirmation, ChainStore, Cursor

log = structlog.get_logger("keiko.chain.watcher")

CURSOR_NAME = "interaction_anchor.BatchAnchored"


class ChainWatcher:
    def __init__(
        self,
        store: ChainStore,
        chain: AnchorChain,
        *,
        start_block: int = 0,
        chunk_size: int = 100,
        poll_interval: float = 0.2,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.start_block = start_block
        self.chunk_size = chunk_size
        self.poll_interval = poll_interval
        self._on_change = on_change
        self.last_error: str | None = None

    async def cursor(self) -> Cursor:
        return await self.store.get_cursor(CURSOR_NAME, self.start_block)

    async def poll_once(self) -> tuple[int, bool]:
        """Apply one page of events. Returns (batches confirmed, more pages waiting)."""
        cursor = await self.cursor()
        head = cursor.to_block
        if head is None:
            head = await self.chain.block_number()
            if head < cursor.from_block:
                return 0, False
        page = await self.chain.events(
            BATCH_ANCHORED,
            from_block=cursor.from_block,
            to_block=head,
            chunk_size=self.chunk_size,
            continuation_token=cursor.continuation_token,
        )
        confirmations = []
        for event in page.events:
            if event.name != BATCH_ANCHORED:
                continue
            confirmations.append(
                AnchorConfirmation(
                    batch_id=int(event["batch_id"]),
                    root=int(event["root"]),
                    block=event.block_number if event.block_number is not None else head,
                    tx_hash=event.tx_hash,
                )
            )
        if page.continuation_token:
            nxt = Cursor(cursor.from_block, head, page.continuation_token)
        else:
            nxt = Cursor(head + 1, None, None)
        changed = await self.store.apply_events(CURSOR_NAME, confirmations, nxt)
        if changed:
            BATCHES_CONFIRMED.labels("event").inc(len(changed))
        for batch_id in changed:
            log.info("batch anchored (event)", batch_id=hex(batch_id))
        if changed and self._on_change is not None:
            self._on_change()
        return len(changed), bool(page.continuation_token)

    async def catch_up(self) -> int:
        """Poll until the current head is scanned; returns batches confirmed."""
        total = 0
        while True:
            changed, more = await self.poll_once()
            total += changed
            if not more:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        log.info("chain watcher started")
        failures = 0
        while not stop.is_set():
            try:
                _, more = await self.poll_once()
                failures = 0
                self.last_error = None
            except Exception as exc:
                failures += 1
                more = False
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning(
                        "chain watcher poll failed", failures=failures, error=self.last_error
                    )
            if more:
                continue
            delay = self.poll_interval * min(2**failures, 25)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        log.info("chain watcher stopped")
