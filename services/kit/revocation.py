"""Revoked sessions, known to every service.

Access tokens are verified offline with identity's public key, so a token outlives the
revocation of its session (logout, "sign out that device", a stolen refresh token) until
it expires, up to the access TTL. Identity announces each revocation on
``identity.session_revoked``; every process reads that topic in a consumer group of its
own, from the oldest retained event (so a process started later learns of earlier
revocations too), and keeps each session id until the last access token of that session
has expired. Its :class:`~services.kit.auth.TokenVerifier` refuses tokens of those
sessions. Revocation so reaches every service within the event bus's latency, not the
token's lifetime.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import datetime, timedelta

from services.kit.clock import Clock
from services.kit.events.base import Event, EventBus
from services.kit.events.dedupe import run_consumer
from services.kit.logging import get_logger
from services.kit.runtime import BackgroundJob

__all__ = ["TOPIC_SESSION_REVOKED", "RevokedSessions", "session_revoked_event"]

log = get_logger(__name__)

TOPIC_SESSION_REVOKED = "identity.session_revoked"
# How long to remember a session when the event does not say (longer than any access TTL).
DEFAULT_MEMORY = timedelta(hours=1)
_PRUNE_EVERY = 1024  # additions between sweeps of expired entries


def session_revoked_event(
    session_id: str, user_id: str, reason: str, tokens_valid_until: datetime
) -> Event:
    """The event identity publishes when it revokes a session."""
    return Event(
        TOPIC_SESSION_REVOKED,
        key=user_id,
        payload={
            "session_id": session_id,
            "user_id": user_id,
            "reason": reason,
            "tokens_valid_until": tokens_valid_until.isoformat(),
        },
    )


class RevokedSessions:
    """Session ids revoked recently, each until its last access token has expired."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: dict[str, datetime] = {}
        self._added = 0

    def __len__(self) -> int:
        return len(self._until)

    def __contains__(self, session_id: object) -> bool:
        until = self._until.get(session_id) if isinstance(session_id, str) else None
        if until is None:
            return False
        if self._clock.now() > until:
            del self._until[session_id]  # type: ignore[arg-type]
            return False
        return True

    def add(self, session_id: str, until: datetime) -> None:
        if not session_id or until < self._clock.now():  # its tokens have expired already
            return
        self._until[session_id] = max(until, self._until.get(session_id, until))
        self._added += 1
        if self._added % _PRUNE_EVERY == 0:
            now = self._clock.now()
            for expired in [s for s, u in self._until.items() if u < now]:
                del self._until[expired]

    def add_event(self, event: Event) -> None:
        session_id = event.payload.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            log.warning("auth.revocation_ignored", event_id=event.id, reason="no session_id")
            return
        until = self._clock.now() + DEFAULT_MEMORY
        raw = event.payload.get("tokens_valid_until")
        parsed = _aware_time(raw)
        if parsed is not None:
            until = parsed
        else:
            log.warning("auth.revocation_bad_time", event_id=event.id)
        self.add(session_id, until)

    def job(self, bus: EventBus) -> BackgroundJob:
        """Background job: follow ``identity.session_revoked`` until stopped, in a group of
        this process's own (deleted when it stops)."""

        async def run(stop: asyncio.Event) -> None:
            group = f"revocations.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            subscription = bus.subscribe(
                [TOPIC_SESSION_REVOKED], group=group, consumer="verifier", start="earliest"
            )
            consumer = asyncio.create_task(run_consumer(subscription, self._handle))
            await stop.wait()
            await subscription.close()
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            try:
                await bus.delete_group(TOPIC_SESSION_REVOKED, group)
            except Exception:  # shutting down: a leftover group is harmless
                log.warning("auth.revocations_group_kept", group=group)

        return run

    async def _handle(self, event: Event) -> None:
        self.add_event(event)


def _aware_time(raw: object) -> datetime | None:
    """An RFC 3339 time with its offset, or None (a naive time cannot be compared)."""
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
