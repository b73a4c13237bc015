"""Users and their roles (`users`, `user_roles`): adding, reading, listing and updating
them; the lockout and proof-of-humanity flags of an account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.identity.domain import Profile, Role, User
from services.identity.storage.common import Store, escape_like, metadata, rowcount, ts
from services.kit.clock import as_utc, as_utc_or_none

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("bio", Text, nullable=False, default=""),
    Column("avatar_url", String(2048), nullable=False, default=""),
    Column("locale", String(35), nullable=False, default=""),
    Column("time_zone", String(64), nullable=False, default=""),
    # The profile fields the user made public, comma-separated (issue 9).
    Column("public_fields", String(200), nullable=False, default="", server_default=""),
    Column("human_verified", Boolean, nullable=False, default=False),
    Column("user_handle", LargeBinary(64), nullable=False, unique=True),
    ts("locked_until", nullable=True),
    ts("created_at"),
    ts("updated_at"),
)


user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), primary_key=True),
    Index(None, "role"),
)


class UserStore(Store):
    async def add_user(self, user: User) -> None:
        self.written_users.add(user.id)
        await self.s.execute(
            users.insert().values(
                id=user.id,
                email=user.email,
                display_name=user.display_name,
                bio=user.profile.bio,
                avatar_url=user.profile.avatar_url,
                locale=user.profile.locale,
                time_zone=user.profile.time_zone,
                public_fields=",".join(sorted(user.profile.public)),
                human_verified=user.human_verified,
                user_handle=user.user_handle,
                locked_until=user.locked_until,
                created_at=user.created_at,
                updated_at=user.updated_at,
            )
        )
        await self._write_roles(user.id, user.roles)

    async def _write_roles(self, user_id: str, roles: frozenset[Role]) -> None:
        await self.s.execute(delete(user_roles).where(user_roles.c.user_id == user_id))
        if roles:
            await self.s.execute(
                user_roles.insert(), [{"user_id": user_id, "role": str(r)} for r in sorted(roles)]
            )

    async def _roles_of(self, user_ids: Sequence[str]) -> dict[str, frozenset[Role]]:
        if not user_ids:
            return {}
        rows = await self.s.execute(
            select(user_roles.c.user_id, user_roles.c.role).where(
                user_roles.c.user_id.in_(list(user_ids))
            )
        )
        found: dict[str, list[str]] = {uid: [] for uid in user_ids}
        for uid, role in rows:
            found[uid].append(role)
        return {uid: _roles(names) for uid, names in found.items()}

    async def _users_from(self, rows: Sequence[Row[Any]]) -> list[User]:
        roles = await self._roles_of([row.id for row in rows])
        return [_user(row, roles.get(row.id, frozenset())) for row in rows]

    async def get_user(self, user_id: str, *, for_update: bool = False) -> User | None:
        """One statement: the user row joined to its roles (one row per role, or one row
        with a NULL role for a user without roles)."""
        stmt = (
            select(users, user_roles.c.role.label("role_name"))
            .select_from(users.outerjoin(user_roles, user_roles.c.user_id == users.c.id))
            .where(users.c.id == user_id)
        )
        if for_update:
            # PostgreSQL cannot lock the nullable side of an outer join: lock the user row.
            stmt = stmt.with_for_update(of=users)
        rows = (await self.s.execute(stmt)).all()
        if not rows:
            return None
        return _user(rows[0], _roles(row.role_name for row in rows))

    async def get_user_by_email(self, email: str) -> User | None:
        rows = (await self.s.execute(select(users).where(users.c.email == email))).all()
        found = await self._users_from(rows)
        return found[0] if found else None

    async def list_users(
        self, *, query: str, role: Role | None, offset: int, limit: int
    ) -> list[User]:
        stmt = select(users)
        if query:
            pattern = f"%{escape_like(query.lower())}%"
            stmt = stmt.where(
                or_(
                    func.lower(users.c.email).like(pattern, escape="\\"),
                    func.lower(users.c.display_name).like(pattern, escape="\\"),
                )
            )
        if role is not None:
            stmt = stmt.where(
                users.c.id.in_(select(user_roles.c.user_id).where(user_roles.c.role == str(role)))
            )
        stmt = stmt.order_by(users.c.created_at, users.c.id).offset(offset).limit(limit)
        return await self._users_from((await self.s.execute(stmt)).all())

    async def save_profile(self, user: User) -> None:
        self.written_users.add(user.id)
        await self.s.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(
                display_name=user.display_name,
                bio=user.profile.bio,
                avatar_url=user.profile.avatar_url,
                locale=user.profile.locale,
                time_zone=user.profile.time_zone,
                public_fields=",".join(sorted(user.profile.public)),
                updated_at=user.updated_at,
            )
        )

    async def set_roles(self, user_id: str, roles: frozenset[Role], now: datetime) -> None:
        self.written_users.add(user_id)
        await self._write_roles(user_id, roles)
        await self.s.execute(update(users).where(users.c.id == user_id).values(updated_at=now))

    async def set_human_verified(self, user_id: str, verified: bool, now: datetime) -> bool:
        self.written_users.add(user_id)
        result = await self.s.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(human_verified=verified, updated_at=now)
        )
        return rowcount(result) == 1

    async def set_locked_until(self, user_id: str, until: datetime | None) -> None:
        self.written_users.add(user_id)
        await self.s.execute(update(users).where(users.c.id == user_id).values(locked_until=until))


def _roles(names: Iterable[str | None]) -> frozenset[Role]:
    found: set[Role] = set()
    for name in names:
        if name is None:  # outer join: the user has no role
            continue
        try:
            found.add(Role(name))
        except ValueError:  # a role this release does not know: ignore it
            continue
    return frozenset(found)


def _user(row: Row[Any], roles: frozenset[Role]) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        roles=roles,
        profile=Profile(
            bio=row.bio,
            avatar_url=row.avatar_url,
            locale=row.locale,
            time_zone=row.time_zone,
            public=frozenset(f for f in row.public_fields.split(",") if f),
        ),
        human_verified=bool(row.human_verified),
        user_handle=bytes(row.user_handle),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        locked_until=as_utc_or_none(row.locked_until),
    )
