"""What every reputation use case shares: the topics it consumes and announces, the
lookup of verified humans' commitments, and `ReputationCore` (database, clock, events)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.logging import get_logger
from services.reputation.domain import (
    Flag,
    Rating,
    Score,
    canonical_json,
    compute_score,
    digest_fields,
    iso,
)
from services.reputation.storage import Repository, outbox

log = get_logger(__name__)

# Topics this service publishes (through its outbox).
TOPIC_RATING_REVEALED = "reputation.rating_revealed"
TOPIC_RATING_FLAGGED = "reputation.rating_flagged"
TOPIC_FLAG_REVIEWED = "reputation.flag_reviewed"
TOPIC_REPUTATION_UPDATED = "reputation.reputation_updated"
# Topics it consumes.
TOPIC_SESSION_COMPLETED = "marketplace.tutor_session_completed"
STUDENT_CONSENTS = frozenset({"self", "accepted"})
TOPIC_HUMANITY_VERIFIED = "identity.humanity_verified"
TOPIC_USER_UPDATED = "identity.user_updated"
CONSUMED_TOPICS = (TOPIC_SESSION_COMPLETED, TOPIC_HUMANITY_VERIFIED, TOPIC_USER_UPDATED)
REVEAL_BATCH = 500


class HumanityLookup(Protocol):
    """User id -> humanity commitment (hex) of the verified human behind the account.
    Users without a verified proof of humanity are absent from the answer."""

    async def commitments(self, user_ids: Collection[str]) -> Mapping[str, str]: ...


class StoredHumanityLookup:
    """Reads the `reputation.humanity` table that the consumer of `identity.humanity_verified`
    / `identity.user_updated` keeps (see `ReputationService.on_humanity_event`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def commitments(self, user_ids: Collection[str]) -> Mapping[str, str]:
        async with self.db.session() as session:
            return await Repository(session).commitments(user_ids)


def updated_event(score: Score, now: datetime) -> Event:
    return Event(
        TOPIC_REPUTATION_UPDATED, key=score.user_id, occurred_at=now, payload=score.to_json()
    )


class ReputationCore:
    """The database, clock and humanity lookup every reputation use case runs on, and the
    events they announce."""

    def __init__(self, db: Database, clock: Clock, humanity: HumanityLookup) -> None:
        self.db = db
        self.clock = clock
        self.humanity = humanity

    async def _announce(
        self, session: AsyncSession, user_ids: Collection[str], now: datetime
    ) -> None:
        """Recompute, snapshot and announce the scores of `user_ids` in this transaction."""
        repo = Repository(session)
        for user_id in sorted(user_ids):
            score = compute_score(user_id, await repo.received(user_id, now), now)
            await repo.save_snapshot(score)
            await enqueue(session, outbox, updated_event(score, now))

    def _revealed_event(self, rating: Rating, now: datetime) -> Event:
        """What the chain translator anchors: the rating digest and the fields it covers
        (the comment only by its hash), plus reveal time."""
        fields = digest_fields(
            rating_id=rating.id,
            subject_kind=rating.subject_kind,
            subject_id=rating.subject_id,
            rater_id=rating.rater_id,
            rated_id=rating.rated_id,
            rater_role=rating.rater_role,
            score=rating.score,
            comment=rating.comment,
            created_at=rating.created_at,
        )
        return Event(
            TOPIC_RATING_REVEALED,
            key=rating.rated_id,
            occurred_at=now,
            payload={
                "kind": "reputation.rating",
                # For keiko.chain.v1 SubmitForAnchoring: domain, record_id and leaf_data =
                # the UTF-8 bytes of `leaf_data` (the canonical JSON of `fields`).
                "domain": "reputation",
                "record_id": rating.id,
                "leaf_data": canonical_json(fields).decode(),
                "digest": rating.digest,
                "digest_algorithm": "sha256/canonical-json-v1",
                "fields": fields,
                "revealed_at": iso(now),
            },
        )

    def _flagged_event(self, rating: Rating, flag: Flag, now: datetime) -> Event:
        return Event(
            TOPIC_RATING_FLAGGED,
            key=rating.id,
            occurred_at=now,
            payload={
                "rating_id": rating.id,
                "rated_id": rating.rated_id,
                "reasons": sorted(str(r) for r in flag.reasons),
                "flagged_at": iso(flag.flagged_at),
            },
        )
