"""Revoked sessions across services: the deny-list, the verifier, the follower job."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.kit.auth import (
    Principal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key_pem,
    public_key_pem,
)
from services.kit.clock import FixedClock
from services.kit.errors import Unauthenticated
from services.kit.events import Event, EventBus
from services.kit.revocation import (
    TOPIC_SESSION_REVOKED,
    RevokedSessions,
    session_revoked_event,
)

CEILING_S = 30.0  # how long to wait for an event at most, not a timing assertion


def test_a_session_is_remembered_until_its_tokens_have_expired(clock: FixedClock) -> None:
    revoked = RevokedSessions(clock)
    revoked.add("s-1", clock.now() + timedelta(minutes=16))
    revoked.add("s-1", clock.now() + timedelta(minutes=1))  # an older announcement: kept longer
    assert "s-1" in revoked and "s-2" not in revoked and 42 not in revoked
    clock.advance(timedelta(minutes=16))
    assert "s-1" in revoked
    clock.advance(timedelta(seconds=1))
    assert "s-1" not in revoked and len(revoked) == 0


def test_events_without_a_usable_time_are_remembered_for_the_default(clock: FixedClock) -> None:
    revoked = RevokedSessions(clock)
    revoked.add_event(Event(TOPIC_SESSION_REVOKED, key="u", payload={"session_id": "s-1"}))
    revoked.add_event(
        Event(
            TOPIC_SESSION_REVOKED,
            key="u",
            payload={"session_id": "s-2", "tokens_valid_until": "yesterday"},
        )
    )
    revoked.add_event(
        Event(
            TOPIC_SESSION_REVOKED,
            key="u",
            payload={"session_id": "s-3", "tokens_valid_until": "2026-01-01T00:00:00"},
        )
    )  # no offset: not comparable, so the default
    revoked.add_event(Event(TOPIC_SESSION_REVOKED, key="u", payload={"user_id": "u"}))
    assert all(s in revoked for s in ("s-1", "s-2", "s-3"))
    assert len(revoked) == 3
    clock.advance(timedelta(hours=1, seconds=1))
    assert "s-1" not in revoked and "s-2" not in revoked and "s-3" not in revoked


def test_the_verifier_refuses_tokens_of_revoked_sessions(clock: FixedClock) -> None:
    key = generate_signing_key_pem()
    issuer = TokenIssuer(key, clock, timedelta(minutes=15))
    revoked = RevokedSessions(clock)
    verifier = TokenVerifier(public_key_pem(key), clock, revoked_sessions=revoked)
    ana = Principal(user_id="ana", roles=frozenset({"learner"}), session_id="s-ana")
    service = Principal(user_id="svc", roles=frozenset({"service"}))  # no session
    token, service_token = issuer.issue(ana).token, issuer.issue(service).token
    assert verifier.verify(token).session_id == "s-ana"
    revoked.add("s-ana", clock.now() + timedelta(minutes=16))
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        verifier.verify(token)
    assert verifier.verify(service_token).user_id == "svc"


async def learned(revoked: RevokedSessions, session_id: str) -> None:
    for _ in range(int(CEILING_S / 0.02)):
        if session_id in revoked:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{session_id} was never learned")


async def test_the_job_learns_past_and_new_revocations_and_cleans_up(
    event_bus: EventBus, clock: FixedClock
) -> None:
    until = clock.now() + timedelta(minutes=16)
    # announced before this process started: its group reads from the oldest event
    await event_bus.publish(session_revoked_event("s-1", "ana", "logout", until))
    expired = clock.now() - timedelta(seconds=1)  # tokens long dead: nothing to remember
    await event_bus.publish(session_revoked_event("s-0", "ana", "logout", expired))
    revoked = RevokedSessions(clock)
    stop = asyncio.Event()
    job = asyncio.create_task(revoked.job(event_bus)(stop))
    try:
        await learned(revoked, "s-1")
        await event_bus.publish(session_revoked_event("s-2", "ana", "revoked", until))
        await learned(revoked, "s-2")
        assert "s-0" not in revoked and len(revoked) == 2
        [group] = await event_bus.groups(TOPIC_SESSION_REVOKED)
        assert group.startswith("revocations.")
    finally:
        stop.set()
        async with asyncio.timeout(CEILING_S):
            await job
    assert job.done() and not job.cancelled()
    assert await event_bus.groups(TOPIC_SESSION_REVOKED) == []  # its group went with it
