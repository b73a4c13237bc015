"""Who is a verified human: the identity service owns the answer, governance mirrors it.

`HumanityCheck` is the question the service asks (user id -> bool). The implementation
used is `MirroredHumanityCheck`: a table in governance's own schema (`governance.humans`)
kept up to date by consuming identity's events, so

- casting a vote does not depend on the identity service being up,
- counting eligible voters (verified human members) is one SQL join, not N RPCs,
- there is no need to forward the caller's access token between services.

Identity events consumed (topic -> payload):

    identity.humanity_verified  {"user_id": "<uuid>", "humanity_commitment": "0x..."}
                                                       proof of humanity registered (on
                                                       chain: votes on chain name it)
    identity.humanity_revoked   {"user_id": "<uuid>"}   enrollment removed / revoked

Each event is applied once per consumer group (`handle_once`: the dedupe marker commits
with the change), and an event older than the stored state (`occurred_at`) never
overwrites it, so redeliveries and reordering are harmless.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.governance.storage import GovernanceRepository, processed_events
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import Deduplicator, handle_once, run_consumer
from services.kit.logging import get_logger

log = get_logger(__name__)

TOPIC_HUMANITY_VERIFIED = "identity.humanity_verified"
TOPIC_HUMANITY_REVOKED = "identity.humanity_revoked"
HUMANITY_TOPICS = (TOPIC_HUMANITY_VERIFIED, TOPIC_HUMANITY_REVOKED)
CONSUMER_GROUP = "governance.humanity"
_FELT = re.compile(r"0x[0-9a-fA-F]{1,64}")


class HumanityCheck(Protocol):
    async def is_verified_human(self, user_id: str) -> bool:
        """True if identity has registered this user's proof of humanity."""
        ...


class MirroredHumanityCheck:
    """Reads governance's mirror of identity's humanity state."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def is_verified_human(self, user_id: str) -> bool:
        async with self.db.session() as session:
            return await GovernanceRepository(session).is_verified_human(user_id)


class HumanityMirror:
    """Applies identity's humanity events to `governance.humans`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.dedupe = Deduplicator(processed_events, group=CONSUMER_GROUP, clock=clock)

    async def handle(self, event: Event) -> bool:
        """Apply one event (once per event id). Returns whether it was applied now."""
        return await handle_once(self.db, self.dedupe, event, self._apply)

    async def _apply(self, session: AsyncSession, event: Event) -> None:
        user_id = event.payload.get("user_id")
        if not isinstance(user_id, str) or not user_id or len(user_id) > 64:
            # A malformed event cannot become valid by retrying: record it and move on.
            log.warning("governance.humanity_event_malformed", event_id=event.id)
            return
        if event.topic not in HUMANITY_TOPICS:
            return
        verified = event.topic == TOPIC_HUMANITY_VERIFIED
        commitment = event.payload.get("humanity_commitment")
        if not isinstance(commitment, str) or not _FELT.fullmatch(commitment):
            commitment = ""
        changed = await GovernanceRepository(session).set_human(
            user_id, verified, event.occurred_at, commitment if verified else ""
        )
        if changed:
            log.info("governance.humanity_mirrored", user_id=user_id, verified=verified)

    def job(self, bus: EventBus, consumer: str) -> _MirrorJob:
        return _MirrorJob(self, bus, consumer)


class _MirrorJob:
    """Background job: consume identity's humanity events until stopped."""

    def __init__(self, mirror: HumanityMirror, bus: EventBus, consumer: str) -> None:
        self.mirror = mirror
        self.bus = bus
        self.consumer = consumer

    async def __call__(self, stop: asyncio.Event) -> None:
        subscription = self.bus.subscribe(
            list(HUMANITY_TOPICS), group=CONSUMER_GROUP, consumer=self.consumer
        )
        consume = asyncio.create_task(run_consumer(subscription, self.mirror.handle))
        await stop.wait()
        await subscription.close()
        try:
            await asyncio.wait_for(consume, timeout=5.0)
        except TimeoutError:
            consume.cancel()
