"""The identity read caches (IdentityService.active_sessions and .users, made with
services.kit.fresh): a write in the process is seen by the next read, a write by another
process (here: a second service on the same database, i.e. another worker or replica)
within `FRESH_FOR_S`, and nothing revoked, expired or missing is ever served from
memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keiko.authenticator import SoftwareAuthenticator
from services.identity.domain import ProfileUpdate, Role, User
from services.identity.service import IdentityService, SignedIn
from services.identity.settings import IdentitySettings
from services.identity.storage import IdentityRepository
from services.identity.tests.conftest import register
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import Unauthenticated
from services.kit.fresh import FRESH_FOR_S, FreshFor


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def caller(signed_in: SignedIn, *, admin: bool = False) -> Principal:
    roles = {"learner", "admin"} if admin else {"learner"}
    return Principal(
        user_id=signed_in.user.id, roles=frozenset(roles), session_id=signed_in.tokens.session_id
    )


def with_ticks(service: IdentityService, ticks: Ticks) -> IdentityService:
    service.active_sessions = FreshFor(monotonic=ticks)
    service.users = FreshFor(monotonic=ticks)
    return service


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def other_worker(
    migrated_database: Database,
    settings: IdentitySettings,
    clock: FixedClock,
    issuer: TokenIssuer,
    ticks: Ticks,
) -> IdentityService:
    """The identity service of another process on the same database."""
    return with_ticks(IdentityService(migrated_database, settings, clock, issuer), ticks)


async def read_twice(service: IdentityService, principal: Principal, user_id: str) -> User:
    """GetUser's path twice: the second answer comes from the caches."""
    first = await service.get_user(principal, user_id, check_session=True)
    assert await service.get_user(principal, user_id, check_session=True) == first
    return first


async def test_a_revoked_session_is_refused_at_once_after_a_cached_read(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = caller(ana)
    await read_twice(service, me, ana.user.id)
    await service.require_active_session(me)  # cached as active
    await service.logout(me, session_id=ana.tokens.session_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await service.get_user(me, ana.user.id, check_session=True)
    with pytest.raises(Unauthenticated, match="revoked"):
        await service.require_active_session(me)


async def test_a_refresh_token_reuse_revokes_the_cached_session_at_once(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = caller(ana)
    await read_twice(service, me, ana.user.id)
    await service.refresh(ana.tokens.refresh_token)
    with pytest.raises(Unauthenticated, match="reuse"):
        await service.refresh(ana.tokens.refresh_token)
    with pytest.raises(Unauthenticated, match="revoked"):
        await service.get_user(me, ana.user.id, check_session=True)


async def test_another_process_refuses_a_revoked_session_within_the_bound(
    service: IdentityService,
    other_worker: IdentityService,
    authenticator: SoftwareAuthenticator,
    ticks: Ticks,
) -> None:
    ana = await register(service, authenticator)
    me = caller(ana)
    await read_twice(other_worker, me, ana.user.id)
    await service.revoke_session(me, ana.tokens.session_id)
    # The other process read the session as active less than FRESH_FOR_S ago: that is
    # the bound on how late it sees the revocation (it hears of it on the event bus too).
    ticks.now += FRESH_FOR_S
    with pytest.raises(Unauthenticated, match="revoked"):
        await other_worker.get_user(me, ana.user.id, check_session=True)


async def test_a_cached_session_is_not_served_past_its_expiry(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    ana = await register(service, authenticator)
    me = caller(ana)
    await read_twice(service, me, ana.user.id)
    clock.advance(service.settings.refresh_token_ttl + timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        await service.get_user(me, ana.user.id, check_session=True)


async def test_a_cached_session_serves_only_its_own_user(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    bob = await register(service, authenticator, "bob@example.org", "Bob")
    await read_twice(service, caller(ana), ana.user.id)
    # Bob's user id with Ana's (cached) session id: not Ana's session's user.
    forged = Principal(user_id=bob.user.id, session_id=ana.tokens.session_id)
    with pytest.raises(Unauthenticated, match="unknown session"):
        await service.get_user(forged, bob.user.id, check_session=True)


async def test_a_role_change_is_visible_at_once_and_to_other_processes_within_the_bound(
    service: IdentityService,
    other_worker: IdentityService,
    authenticator: SoftwareAuthenticator,
    ticks: Ticks,
) -> None:
    ana = await register(service, authenticator)
    admin = await register(service, authenticator, "root@example.org", "Root")
    await service.grant_admin("root@example.org")
    me = caller(ana)
    assert (await read_twice(service, me, ana.user.id)).roles == {Role.LEARNER}
    await read_twice(other_worker, me, ana.user.id)

    await service.set_roles(caller(admin, admin=True), ana.user.id, ["learner", "tutor"])
    seen = await service.get_user(me, ana.user.id, check_session=True)
    assert seen.roles == {Role.LEARNER, Role.TUTOR}
    ticks.now += FRESH_FOR_S
    elsewhere = await other_worker.get_user(me, ana.user.id, check_session=True)
    assert elsewhere.roles == {Role.LEARNER, Role.TUTOR}


async def test_grant_admin_and_profile_updates_are_visible_at_once(
    service: IdentityService, authenticator: SoftwareAuthenticator
) -> None:
    ana = await register(service, authenticator)
    me = caller(ana)
    await read_twice(service, me, ana.user.id)
    await service.grant_admin("ana@example.org")
    assert Role.ADMIN in (await service.get_user(me, ana.user.id, check_session=True)).roles
    await service.update_profile(me, "", ProfileUpdate(display_name="Ana B."))
    assert (await service.get_user(me, ana.user.id)).display_name == "Ana B."


async def test_a_write_through_another_transaction_is_forgotten_by_forget_written(
    service: IdentityService, authenticator: SoftwareAuthenticator, clock: FixedClock
) -> None:
    """What proof of humanity does (its own transaction, then `forget_written`)."""
    ana = await register(service, authenticator)
    me = caller(ana)
    assert not (await read_twice(service, me, ana.user.id)).human_verified
    db = service.db
    async with db.transaction() as session:
        repo = IdentityRepository(session, db.dialect)
        await repo.set_human_verified(ana.user.id, True, clock.now())
    service.forget_written(repo)
    assert (await service.get_user(me, ana.user.id, check_session=True)).human_verified


def test_a_read_that_raced_a_write_is_not_stored() -> None:
    cache: FreshFor[str, str] = FreshFor()
    generation = cache.generation  # a read begins...
    cache.invalidate(["ana"])  # ...a write commits meanwhile...
    cache.put("ana", "what the read saw", generation)  # ...the read's answer may be old
    assert cache.get("ana") is None
    cache.put("ana", "fresh", cache.generation)
    assert cache.get("ana") == "fresh"


def test_entries_expire_and_the_size_is_bounded() -> None:
    ticks = Ticks()
    cache: FreshFor[int, int] = FreshFor(fresh_for=1.0, max_entries=3, monotonic=ticks)
    for n in range(5):
        cache.put(n, n * 10, cache.generation)
    assert len(cache) == 3
    assert [cache.get(n) for n in range(5)] == [None, None, 20, 30, 40]  # oldest dropped
    ticks.now = 1.0
    assert cache.get(4) is None
