"""Identity announces every session it revokes (logout, revoke, refresh-token reuse) on
``identity.session_revoked``, exactly once, in the transaction that revokes it."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from keiko.authenticator import SoftwareAuthenticator
from services.identity.humanity_storage import outbox
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from services.identity.tests.conftest import login, register
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import Unauthenticated
from services.kit.revocation import TOPIC_SESSION_REVOKED


async def announced(db: Database) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.key, outbox.c.payload)
            .where(outbox.c.topic == TOPIC_SESSION_REVOKED)
            .order_by(outbox.c.seq)
        )
        return [{"key": row.key, **row.payload} for row in rows]


@pytest.fixture
def nudges() -> list[int]:
    return []


@pytest.fixture
def announcing(service: IdentityService, nudges: list[int]) -> IdentityService:
    service.on_commit = lambda: nudges.append(1)
    return service


async def test_logout_revoke_and_reuse_are_each_announced_once(
    announcing: IdentityService,
    authenticator: SoftwareAuthenticator,
    migrated_database: Database,
    clock: FixedClock,
    settings: IdentitySettings,
    nudges: list[int],
) -> None:
    service = announcing
    first = await register(service, authenticator)
    nudges.clear()  # sign-up announces the display name (identity.profile_changed)
    user_id = first.user.id
    me = Principal(
        user_id=user_id, roles=frozenset({"learner"}), session_id=first.tokens.session_id
    )
    phone = await login(service, authenticator)
    laptop = await login(service, authenticator)

    await service.revoke_session(me, phone.tokens.session_id)
    await service.logout(me, refresh_token=first.tokens.refresh_token)
    rotated = await service.refresh(laptop.tokens.refresh_token)
    with pytest.raises(Unauthenticated, match="reuse detected"):
        await service.refresh(laptop.tokens.refresh_token)  # a retired token came back
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.refresh(rotated.refresh_token)  # already revoked: no second event

    until = (clock.now() + settings.access_token_ttl).isoformat()
    events = await announced(migrated_database)
    assert [(e["session_id"], e["reason"]) for e in events] == [
        (phone.tokens.session_id, "revoked"),
        (first.tokens.session_id, "logout"),
        (laptop.tokens.session_id, "refresh_token_reuse"),
    ]
    assert all(e["key"] == e["user_id"] == user_id for e in events)
    # remembered until every access token of the session is expired, with a margin
    assert all(str(e["tokens_valid_until"]) > until for e in events)
    assert all(datetime.fromisoformat(str(e["tokens_valid_until"])).tzinfo for e in events)
    assert len(nudges) == 3  # the relay is nudged after each commit, not before


async def test_revoking_a_revoked_session_announces_nothing_more(
    announcing: IdentityService,
    authenticator: SoftwareAuthenticator,
    migrated_database: Database,
    nudges: list[int],
) -> None:
    first = await register(announcing, authenticator)
    assert len(nudges) == 1  # sign-up announced the display name
    async with migrated_database.session() as s:
        named = (
            (
                await s.execute(
                    select(outbox.c.payload).where(outbox.c.topic == "identity.profile_changed")
                )
            )
            .scalars()
            .all()
        )
    assert named == [{"user_id": first.user.id, "display_name": first.user.display_name}]
    nudges.clear()
    me = Principal(
        user_id=first.user.id, roles=frozenset({"learner"}), session_id=first.tokens.session_id
    )
    await announcing.revoke_session(me, first.tokens.session_id)
    await announcing.revoke_session(me, first.tokens.session_id)  # a client retry
    assert len(await announced(migrated_database)) == 1
    assert len(nudges) == 1
