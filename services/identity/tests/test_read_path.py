"""The authenticated read path (GetUser): user + roles in one statement, reads on a bare
connection, and the session check sharing the read's connection without weakening
revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import QueuePool

from keiko.authenticator import SoftwareAuthenticator
from services.identity.domain import Role
from services.identity.service import IdentityService
from services.identity.storage import IdentityRepository, user_roles
from services.identity.tests.conftest import register
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import NotFound, Unauthenticated, ValidationError


def principal_of(session_id: str, user_id: str) -> Principal:
    return Principal(user_id=user_id, roles=frozenset({"learner"}), session_id=session_id)


# -- storage: one statement for the user and its roles ----------------------------------------


async def test_get_user_reads_every_role_in_one_statement(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    db = service.db
    user = (await register(service, authenticator)).user
    roles = frozenset({Role.LEARNER, Role.TUTOR, Role.ADMIN})
    async with db.transaction() as s:
        await IdentityRepository(s, db.dialect).set_roles(user.id, roles, clock.now())
    async with db.read() as conn:
        found = await IdentityRepository(conn, db.dialect).get_user(user.id)
    async with db.session() as s:
        via_session = await IdentityRepository(s, db.dialect).get_user(user.id)
    assert found is not None
    assert found.roles == roles
    assert found == via_session  # a bare connection and an ORM session read the same
    assert found.email == user.email
    assert found.user_handle == user.user_handle
    assert found.created_at == user.created_at  # timezone-aware UTC on both engines
    # ... and the list read (roles fetched per page) agrees.
    async with db.read() as conn:
        (listed,) = await IdentityRepository(conn, db.dialect).list_users(
            query="", role=None, offset=0, limit=10
        )
    assert listed == found


async def test_get_user_without_roles_and_with_unknown_roles(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    db = service.db
    user = (await register(service, authenticator)).user
    async with db.transaction() as s:
        await IdentityRepository(s, db.dialect).set_roles(user.id, frozenset(), clock.now())
    async with db.read() as conn:
        found = await IdentityRepository(conn, db.dialect).get_user(user.id)
    assert found is not None and found.roles == frozenset()  # the outer join's NULL role

    async with db.transaction() as s:
        # A role written by a newer release: ignored, not an error.
        await s.execute(user_roles.insert().values(user_id=user.id, role="wizard"))
        await s.execute(user_roles.insert().values(user_id=user.id, role="tutor"))
    async with db.read() as conn:
        found = await IdentityRepository(conn, db.dialect).get_user(user.id)
    assert found is not None and found.roles == frozenset({Role.TUTOR})


async def test_get_user_unknown_and_for_update(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    db = service.db
    user = (await register(service, authenticator)).user
    async with db.read() as conn:
        assert (
            await IdentityRepository(conn, db.dialect).get_user(
                "00000000-0000-4000-8000-000000000000"
            )
            is None
        )
    # FOR UPDATE on the outer join locks only the user row (PostgreSQL refuses to lock the
    # nullable side of an outer join).
    async with db.transaction() as s:
        locked = await IdentityRepository(s, db.dialect).get_user(user.id, for_update=True)
    assert locked is not None and locked.roles == frozenset({Role.LEARNER})


# -- service: the session check on the read's connection ---------------------------------------


async def test_get_user_checking_the_session_on_the_same_connection(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    assert await service.get_user(me, ana.user.id, check_session=True) == ana.user
    with pytest.raises(NotFound, match=r"^user not found$"):
        await service.get_user(me, "00000000-0000-4000-8000-000000000000", check_session=True)
    with pytest.raises(NotFound, match=r"^user not found$"):
        await service.get_user(me, "not-a-uuid", check_session=True)
    with pytest.raises(ValidationError) as caught:
        await service.get_user(me, "", check_session=True)
    assert caught.value.field == "user_id"


async def test_logout_stops_get_user_at_once(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    for _ in range(3):  # repeated reads must not make the check stick
        assert (await service.get_user(me, ana.user.id, check_session=True)).id == ana.user.id
    await service.logout(me, refresh_token=ana.tokens.refresh_token)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.get_user(me, ana.user.id, check_session=True)
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.require_active_session(me)
    # The session check comes before argument validation, as in the servicer.
    with pytest.raises(Unauthenticated, match=r"^session has been revoked$"):
        await service.get_user(me, "", check_session=True)
    # Without check_session the method is the plain read it always was.
    assert (await service.get_user(me, ana.user.id)).id == ana.user.id


async def test_get_user_refuses_expired_and_foreign_sessions(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    ana = await register(service, authenticator)
    bob = await register(service, authenticator, "bob@example.org", "Bob")
    # Bob's user id with Ana's session: not his session.
    forged = principal_of(ana.tokens.session_id, bob.user.id)
    with pytest.raises(Unauthenticated, match=r"^unknown session$"):
        await service.get_user(forged, bob.user.id, check_session=True)
    unknown = principal_of("00000000-0000-4000-8000-000000000000", ana.user.id)
    with pytest.raises(Unauthenticated, match=r"^unknown session$"):
        await service.get_user(unknown, ana.user.id, check_session=True)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    clock.advance(service.settings.refresh_token_ttl + timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match=r"^session expired$"):
        await service.get_user(me, ana.user.id, check_session=True)


async def test_reads_leave_no_transaction_open(
    migrated_database: Database, service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    """A read's connection goes back to the pool rolled back: a writer is not blocked."""
    ana = await register(service, authenticator)
    me = principal_of(ana.tokens.session_id, ana.user.id)
    for _ in range(5):
        await service.get_user(me, ana.user.id, check_session=True)
    await service.logout(me, refresh_token=ana.tokens.refresh_token)  # a write right after
    pool = migrated_database.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0


# -- kit: Database.read ------------------------------------------------------------------------


async def test_database_read_snapshot_or_statement_by_statement(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    """`read()` keeps one snapshot on SQLite (deferred BEGIN); `read(snapshot=False)` emits no
    BEGIN, so each statement sees the latest commit and the reader holds no transaction
    between statements. PostgreSQL reads are READ COMMITTED either way."""
    db = service.db
    user = (await register(service, authenticator)).user

    async def roles_seen(conn: AsyncConnection) -> frozenset[Role]:
        found = await IdentityRepository(conn, db.dialect).get_user(user.id)
        assert found is not None
        return found.roles

    async with db.read() as snap, db.read(snapshot=False) as live:
        assert await roles_seen(snap) == await roles_seen(live) == frozenset({Role.LEARNER})
        async with db.transaction() as s:  # a writer is not blocked by either reader
            await IdentityRepository(s, db.dialect).set_roles(
                user.id, frozenset({Role.TUTOR}), clock.now()
            )
        assert await roles_seen(live) == frozenset({Role.TUTOR})
        expected = frozenset({Role.LEARNER} if db.dialect == "sqlite" else {Role.TUTOR})
        assert await roles_seen(snap) == expected
    async with db.read() as snap:
        assert await roles_seen(snap) == frozenset({Role.TUTOR})


@pytest.mark.parametrize("snapshot", [True, False])
async def test_database_read_connection_goes_back_clean(
    migrated_database: Database, snapshot: bool
) -> None:
    """After a read (either kind) the pooled connection has no open transaction, so the next
    `transaction()` on it can BEGIN IMMEDIATE."""
    db = migrated_database
    for _ in range(3):
        async with db.read(snapshot=snapshot) as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        async with db.transaction() as s:
            await s.execute(text("SELECT 1"))
    pool = db.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
