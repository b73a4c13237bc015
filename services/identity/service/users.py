"""Users: reading and listing them, profiles (a rename is announced to the other
services), roles, the admin bootstrap of the operator command line, and the
proof-of-humanity flag."""

from __future__ import annotations

from services.identity.domain import (
    PAGE_TOKENS,
    ProfileUpdate,
    Role,
    User,
    normalize_email,
    normalize_roles,
)
from services.identity.humanity_storage import outbox
from services.identity.service.core import is_uuid, log
from services.identity.service.sessions import Sessions
from services.identity.storage import IdentityRepository
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.errors import FailedPrecondition, NotFound, ValidationError
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.paging import Page


class Users(Sessions):
    async def get_user(
        self, principal: Principal, user_id: str, *, check_session: bool = False
    ) -> User:
        """The user `user_id`. With `check_session`, first `require_active_session(principal)`
        on the same connection: one connection checkout for the whole authenticated read
        (the servicer's `_caller()` + `get_user` take two), none when both the session and
        the user are in the read caches."""
        if not user_id and not check_session:
            raise ValidationError("user_id", "is required")
        session_known = not check_session or self._session_known_active(principal)
        if session_known:
            if not user_id:
                raise ValidationError("user_id", "is required")
            cached = self.users.get(user_id)
            if cached is not None:
                return cached
        generation = self.users.generation
        # One statement for the user and its roles, and with `check_session` one before it
        # for the session: each is consistent on its own, so no snapshot across them.
        async with self._read(snapshot=False) as repo:
            if not session_known:
                await self._check_session(repo, principal)
                if not user_id:
                    raise ValidationError("user_id", "is required")
            user = await repo.get_user(user_id) if is_uuid(user_id) else None
        if user is None:
            raise NotFound("user not found")
        self.users.put(user.id, user, generation)
        return user

    async def list_users(
        self,
        principal: Principal,
        *,
        query: str,
        role: Role | None,
        requested_size: int,
        page_token: str,
    ) -> Page[User]:
        principal.require_role(Role.ADMIN)
        limit = self._page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self._read() as repo:
            found = await repo.list_users(
                query=query.strip(), role=role, offset=offset, limit=limit + 1
            )
        return PAGE_TOKENS.page(found, offset, limit)

    async def update_profile(
        self, principal: Principal, user_id: str, update: ProfileUpdate
    ) -> User:
        target = user_id or principal.user_id
        principal.require_self_or_admin(target)
        update = update.validated()
        now = self.clock.now()
        async with self._write() as repo:
            user = await repo.get_user(target, for_update=True) if is_uuid(target) else None
            if user is None:
                raise NotFound("user not found")
            if update.empty:
                return user
            renamed = update.display_name is not None and update.display_name != user.display_name
            user = user.apply(update, now)
            await repo.save_profile(user)
            if renamed:
                await enqueue(repo.s, outbox, profile_changed_event(user))
        self._committed(renamed)
        return user

    async def set_roles(self, principal: Principal, user_id: str, roles: list[str]) -> User:
        principal.require_role(Role.ADMIN)
        if not user_id:
            raise ValidationError("user_id", "is required")
        new_roles = normalize_roles(roles)
        if user_id == principal.user_id and Role.ADMIN not in new_roles:
            raise FailedPrecondition("an admin cannot remove their own admin role")
        now = self.clock.now()
        async with self._write() as repo:
            user = await repo.get_user(user_id, for_update=True) if is_uuid(user_id) else None
            if user is None:
                raise NotFound("user not found")
            await repo.set_roles(user_id, new_roles, now)
            updated = await repo.get_user(user_id)
        assert updated is not None
        log.info("identity.roles_set", user_id=user_id, roles=sorted(new_roles))
        return updated

    async def grant_admin(self, email: str) -> User:
        """Bootstrap: give the account with `email` the admin role (operator command line,
        never an RPC: the first admin cannot be made by another admin)."""
        user = await grant_admin(self.db, self.clock, email)
        self.users.invalidate([user.id])
        return user

    async def set_human_verified(self, user_id: str, verified: bool = True) -> None:
        """Called by the proof-of-humanity enrollment once its commitment is registered."""
        async with self._write() as repo:
            if not await repo.set_human_verified(user_id, verified, self.clock.now()):
                raise NotFound("user not found")


TOPIC_PROFILE_CHANGED = "identity.profile_changed"


def profile_changed_event(user: User) -> Event:
    """Announced at sign-up and on every rename: the passport shows the display name to
    those its owner lets see their identity."""
    return Event(
        TOPIC_PROFILE_CHANGED,
        key=user.id,
        payload={"user_id": user.id, "display_name": user.display_name},
    )


async def grant_admin(db: Database, clock: Clock, email: str) -> User:
    """Give the account with `email` the admin role, straight in the database: for the
    operator command line on the server's own machine (`keiko admin bootstrap`), whose
    access to the database is its authority. Never reachable over the network."""
    normalized = normalize_email(email)
    async with db.transaction() as session:
        repo = IdentityRepository(session, db.dialect)
        user = await repo.get_user_by_email(normalized)
        if user is None:
            raise NotFound("unknown user: no account with this email")
        await repo.set_roles(user.id, user.roles | {Role.ADMIN}, clock.now())
        updated = await repo.get_user(user.id)
    assert updated is not None
    log.info("identity.admin_granted", user_id=user.id)
    return updated


async def list_admins(db: Database, limit: int = 50) -> list[User]:
    """The accounts holding the admin role (operator command line)."""
    async with db.read() as connection:
        repo = IdentityRepository(connection, db.dialect)
        return await repo.list_users(query="", role=Role.ADMIN, offset=0, limit=limit)
