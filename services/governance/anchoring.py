"""Anchoring of off-chain results: governance asks, the chain translator anchors, and
governance records the answer.

FinalizeProposal enqueues `governance.proposal_finalized` with `tally_digest` (see
service.py); the translator batches it (domain 'governance', record id = proposal id)
and, once the batch root is on chain, announces per record

    chain.interaction_anchored  {"domain", "record_id", "batch_id", "root", "block",
                                 "tx_hash", "leaf_index", "status": "anchored"}
    chain.anchor_failed         {"domain", "record_id", "batch_id", "failure_reason",
                                 "status": "failed"}

`AnchorMirror` consumes those (group `governance.anchors`, once per event id), stores the
anchor on the proposal and announces `governance.proposal_changed` (change `anchor_changed`), which
WatchProposal streams as ANCHOR_CHANGED. Events of other domains are skipped.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.governance import domain as d
from services.governance.service import CHANGE_ANCHOR, TOPIC_PROPOSAL_CHANGED
from services.governance.storage import GovernanceRepository, outbox, processed_events
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import Deduplicator, handle_once, run_consumer
from services.kit.events.outbox import enqueue
from services.kit.logging import get_logger

log = get_logger(__name__)

TOPIC_RECORD_ANCHORED = "chain.interaction_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"
ANCHOR_TOPICS = (TOPIC_RECORD_ANCHORED, TOPIC_ANCHOR_FAILED)
CONSUMER_GROUP = "governance.anchors"
DOMAIN = "governance"


class AnchorMirror:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.dedupe = Deduplicator(processed_events, group=CONSUMER_GROUP, clock=clock)

    async def handle(self, event: Event) -> bool:
        if event.payload.get("domain") != DOMAIN:
            return False
        return await handle_once(self.db, self.dedupe, event, self._apply)

    async def _apply(self, session: AsyncSession, event: Event) -> None:
        payload = event.payload
        record_id = payload.get("record_id")
        if not isinstance(record_id, str):
            log.warning("governance.anchor_event_malformed", event_id=event.id)
            return
        repo = GovernanceRepository(session)
        proposal = await repo.get_proposal(record_id) if _is_uuid(record_id) else None
        if proposal is None:
            log.warning("governance.anchor_for_unknown_record", record_id=record_id)
            return
        if proposal.anchor.status is d.AnchorStatus.ANCHORED:
            return  # final
        anchor = _anchor(event.topic, payload, event.occurred_at)
        await repo.update_proposal(proposal.id, anchor=anchor, updated_at=self.clock.now())
        await enqueue(
            session,
            outbox,
            Event(
                TOPIC_PROPOSAL_CHANGED,
                key=proposal.id,
                payload={
                    "change": CHANGE_ANCHOR,
                    "proposal_id": proposal.id,
                    "community_id": proposal.community_id,
                    "anchor_status": anchor.status.value,
                },
                occurred_at=self.clock.now(),
            ),
        )

    def job(self, bus: EventBus, consumer: str) -> _AnchorJob:
        return _AnchorJob(self, bus, consumer)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _anchor(topic: str, payload: dict[str, Any], occurred_at: datetime) -> d.Anchor:
    anchored = topic == TOPIC_RECORD_ANCHORED
    return d.Anchor(
        status=d.AnchorStatus.ANCHORED if anchored else d.AnchorStatus.FAILED,
        tx_hash=str(payload.get("tx_hash") or ""),
        block_number=int(payload.get("block") or 0),
        batch_id=str(payload.get("batch_id") or ""),
        merkle_root=str(payload.get("root") or ""),
        failure_reason="" if anchored else str(payload.get("failure_reason") or ""),
        anchored_at=occurred_at.astimezone(UTC) if anchored else None,
    )


class _AnchorJob:
    def __init__(self, mirror: AnchorMirror, bus: EventBus, consumer: str) -> None:
        self.mirror = mirror
        self.bus = bus
        self.consumer = consumer

    async def __call__(self, stop: asyncio.Event) -> None:
        subscription = self.bus.subscribe(
            list(ANCHOR_TOPICS), group=CONSUMER_GROUP, consumer=self.consumer
        )
        consume = asyncio.create_task(run_consumer(subscription, self.mirror.handle))
        await stop.wait()
        await subscription.close()
        try:
            await asyncio.wait_for(consume, timeout=5.0)
        except TimeoutError:
            consume.cancel()
