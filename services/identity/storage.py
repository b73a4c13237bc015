"""Identity persistence: tables in the `identity` schema and the repository over them.

Secrets are stored hashed only: refresh tokens and ceremony challenges as SHA-256 hex,
rate-limit keys (caller address, email) as SHA-256 too, so the table holds no personal data.
Every datetime column is timezone-aware on PostgreSQL; SQLite returns naive values, which
the row mappers read back as UTC (every value written is UTC).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.identity.domain import (
    Ceremony,
    CeremonyKind,
    Credential,
    Profile,
    Role,
    Session,
    TokenBucket,
    User,
)

SCHEMA = "identity"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


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
    _ts("locked_until", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), primary_key=True),
    Index(None, "role"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", LargeBinary(1023), nullable=False, unique=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False, default=0),
    Column("transports", SAJSON, nullable=False),
    Column("aaguid", String(36), nullable=False),
    Column("backed_up", Boolean, nullable=False, default=False),
    Column("name", String(100), nullable=False),
    Column("attestation_format", String(32), nullable=False),
    _ts("created_at"),
    _ts("last_used_at", nullable=True),
    Index(None, "user_id"),
)

ceremonies = Table(
    "ceremonies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("challenge_hash", String(64), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("email", String(254), nullable=True),
    Column("display_name", String(100), nullable=True),
    Column("user_handle", LargeBinary(64), nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("consumed_at", nullable=True),
    Index(None, "expires_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _ts("created_at"),
    _ts("last_used_at"),
    _ts("expires_at"),
    Column("user_agent", String(512), nullable=False, default=""),
    Column("ip_address", String(64), nullable=False, default=""),
    _ts("revoked_at", nullable=True),
    Column("revoked_reason", String(64), nullable=False, default=""),
    Index(None, "user_id", "created_at"),
)

# One row per refresh token ever issued: the lineage of a session. `used_at` set means the
# token was rotated (retired); presenting it again is reuse.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "session_id",
        String(36),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _ts("issued_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
    Index(None, "session_id"),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _ts("occurred_at"),
    Column("reason", String(200), nullable=False),
    Index(None, "user_id", "occurred_at"),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    _ts("updated_at"),
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_required(value: datetime) -> datetime:
    result = _utc(value)
    assert result is not None
    return result


def new_id() -> str:
    return str(uuid.uuid4())


class IdentityRepository:
    """Queries and writes of the identity schema, within the caller's session/transaction.

    It only runs Core statements, so it works on an ORM `AsyncSession` (what
    `Database.transaction()` yields) or on a bare `AsyncConnection`, the lighter choice for
    reads: no ORM session bookkeeping around each statement.
    """

    def __init__(self, session: AsyncSession | AsyncConnection, dialect: str) -> None:
        self.s = session
        self.dialect = dialect
        # The users (with their roles) and sessions this repository wrote: what the
        # service's read caches forget once the transaction has committed.
        self.written_users: set[str] = set()
        self.written_sessions: set[str] = set()

    # -- users ----------------------------------------------------------------------------

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
            pattern = f"%{_escape_like(query.lower())}%"
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
        return _rowcount(result) == 1

    async def set_locked_until(self, user_id: str, until: datetime | None) -> None:
        self.written_users.add(user_id)
        await self.s.execute(update(users).where(users.c.id == user_id).values(locked_until=until))

    # -- credentials ----------------------------------------------------------------------

    async def add_credential(self, credential: Credential) -> None:
        await self.s.execute(
            credentials.insert().values(
                id=credential.id,
                user_id=credential.user_id,
                credential_id=credential.credential_id,
                public_key=credential.public_key,
                sign_count=credential.sign_count,
                transports=list(credential.transports),
                aaguid=credential.aaguid,
                backed_up=credential.backed_up,
                name=credential.name,
                attestation_format=credential.attestation_format,
                created_at=credential.created_at,
                last_used_at=credential.last_used_at,
            )
        )

    async def get_credential(self, credential_id: bytes) -> Credential | None:
        row = (
            await self.s.execute(
                select(credentials).where(credentials.c.credential_id == credential_id)
            )
        ).first()
        return _credential(row) if row else None

    async def list_credentials(
        self, user_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Credential]:
        stmt = (
            select(credentials)
            .where(credentials.c.user_id == user_id)
            .order_by(credentials.c.created_at, credentials.c.id)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_credential(row) for row in (await self.s.execute(stmt)).all()]

    async def count_credentials(self, user_id: str) -> int:
        count = await self.s.scalar(
            select(func.count()).select_from(credentials).where(credentials.c.user_id == user_id)
        )
        return int(count or 0)

    async def delete_credential(self, user_id: str, id_: str) -> bool:
        result = await self.s.execute(
            delete(credentials).where(credentials.c.id == id_, credentials.c.user_id == user_id)
        )
        return _rowcount(result) == 1

    async def record_credential_use(
        self, id_: str, *, old_sign_count: int, new_sign_count: int, backed_up: bool, now: datetime
    ) -> bool:
        """Store the new sign count, only if nobody used the credential meanwhile (two
        concurrent assertions with the same count: one of them is a clone)."""
        result = await self.s.execute(
            update(credentials)
            .where(credentials.c.id == id_, credentials.c.sign_count == old_sign_count)
            .values(sign_count=new_sign_count, backed_up=backed_up, last_used_at=now)
        )
        return _rowcount(result) == 1

    # -- ceremonies -----------------------------------------------------------------------

    async def add_ceremony(self, ceremony: Ceremony) -> None:
        await self.s.execute(
            ceremonies.insert().values(
                id=ceremony.id,
                kind=str(ceremony.kind),
                challenge_hash=ceremony.challenge_hash,
                user_id=ceremony.user_id,
                email=ceremony.email,
                display_name=ceremony.display_name,
                user_handle=ceremony.user_handle,
                created_at=ceremony.created_at,
                expires_at=ceremony.expires_at,
                consumed_at=ceremony.consumed_at,
            )
        )

    async def get_ceremony(self, ceremony_id: str) -> Ceremony | None:
        row = (
            await self.s.execute(select(ceremonies).where(ceremonies.c.id == ceremony_id))
        ).first()
        if row is None:
            return None
        return Ceremony(
            id=row.id,
            kind=CeremonyKind(row.kind),
            challenge_hash=row.challenge_hash,
            created_at=_utc_required(row.created_at),
            expires_at=_utc_required(row.expires_at),
            consumed_at=_utc(row.consumed_at),
            user_id=row.user_id,
            email=row.email,
            display_name=row.display_name,
            user_handle=row.user_handle,
        )

    async def consume_ceremony(self, ceremony_id: str, now: datetime) -> bool:
        """Mark the ceremony used. False if it was already used (by a concurrent request)."""
        result = await self.s.execute(
            update(ceremonies)
            .where(ceremonies.c.id == ceremony_id, ceremonies.c.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        return _rowcount(result) == 1

    # -- sessions and refresh tokens ------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self.s.execute(
            sessions.insert().values(
                id=session.id,
                user_id=session.user_id,
                created_at=session.created_at,
                last_used_at=session.last_used_at,
                expires_at=session.expires_at,
                user_agent=session.user_agent,
                ip_address=session.ip_address,
                revoked_at=session.revoked_at,
                revoked_reason=session.revoked_reason,
            )
        )

    async def get_session(self, session_id: str) -> Session | None:
        row = (await self.s.execute(select(sessions).where(sessions.c.id == session_id))).first()
        return _session(row) if row else None

    async def list_active_sessions(
        self, user_id: str, now: datetime, *, offset: int, limit: int
    ) -> list[Session]:
        stmt = (
            select(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_session(row) for row in (await self.s.execute(stmt)).all()]

    async def touch_session(self, session_id: str, now: datetime, expires_at: datetime) -> None:
        self.written_sessions.add(session_id)
        await self.s.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(last_used_at=now, expires_at=expires_at)
        )

    async def revoke_session(self, session_id: str, now: datetime, reason: str) -> bool:
        """Revoke a session (its whole refresh-token family). False if already revoked."""
        self.written_sessions.add(session_id)
        result = await self.s.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        return _rowcount(result) == 1

    async def add_refresh_token(
        self, token_hash: str, session_id: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        await self.s.execute(
            refresh_tokens.insert().values(
                token_hash=token_hash,
                session_id=session_id,
                issued_at=issued_at,
                expires_at=expires_at,
                used_at=None,
            )
        )

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        row = (
            await self.s.execute(
                select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).first()
        if row is None:
            return None
        return RefreshTokenRecord(
            token_hash=row.token_hash,
            session_id=row.session_id,
            issued_at=_utc_required(row.issued_at),
            expires_at=_utc_required(row.expires_at),
            used_at=_utc(row.used_at),
        )

    async def retire_refresh_token(self, token_hash: str, now: datetime) -> bool:
        """Mark a refresh token used. False if it was already used: reuse."""
        result = await self.s.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return _rowcount(result) == 1

    # -- failed logins --------------------------------------------------------------------

    async def record_auth_failure(self, user_id: str, now: datetime, reason: str) -> None:
        await self.s.execute(
            auth_failures.insert().values(
                id=new_id(), user_id=user_id, occurred_at=now, reason=reason[:200]
            )
        )

    async def count_auth_failures(self, user_id: str, since: datetime) -> int:
        count = await self.s.scalar(
            select(func.count())
            .select_from(auth_failures)
            .where(auth_failures.c.user_id == user_id, auth_failures.c.occurred_at > since)
        )
        return int(count or 0)

    async def clear_auth_failures(self, user_id: str) -> None:
        await self.s.execute(delete(auth_failures).where(auth_failures.c.user_id == user_id))

    # -- rate limiting --------------------------------------------------------------------

    async def take_rate_token(
        self, key_hash: str, now: datetime, *, capacity: float, refill_per_second: float
    ) -> float:
        """Spend one token of the bucket `key_hash`; returns the seconds to wait (0 = go).

        The bucket row is created full if missing (insert-or-ignore), then locked
        (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions hold the write lock),
        so replicas sharing the database share the limit.
        """
        insert = (
            postgresql.insert(rate_buckets)
            if self.dialect == "postgresql"
            else sqlite.insert(rate_buckets)
        )
        await self.s.execute(
            insert.values(
                key_hash=key_hash, tokens=capacity, updated_at=now
            ).on_conflict_do_nothing(index_elements=["key_hash"])
        )
        row = (
            await self.s.execute(
                select(rate_buckets).where(rate_buckets.c.key_hash == key_hash).with_for_update()
            )
        ).one()
        bucket = TokenBucket(tokens=float(row.tokens), updated_at=_utc_required(row.updated_at))
        new_state, wait = bucket.take(now, capacity=capacity, refill_per_second=refill_per_second)
        await self.s.execute(
            update(rate_buckets)
            .where(rate_buckets.c.key_hash == key_hash)
            .values(tokens=new_state.tokens, updated_at=new_state.updated_at)
        )
        return wait

    # -- housekeeping ---------------------------------------------------------------------

    async def purge_expired(self, now: datetime, failures_before: datetime) -> int:
        """Delete ceremonies and refresh tokens past expiry and failures older than the
        lockout window; buckets idle long enough to be full again are dropped too."""
        removed = 0
        for stmt in (
            delete(ceremonies).where(ceremonies.c.expires_at < now),
            delete(refresh_tokens).where(refresh_tokens.c.expires_at < now),
            delete(auth_failures).where(auth_failures.c.occurred_at < failures_before),
            delete(rate_buckets).where(rate_buckets.c.updated_at < failures_before),
            delete(sessions).where(
                and_(sessions.c.expires_at < now, sessions.c.revoked_at.is_not(None))
            ),
        ):
            removed += _rowcount(await self.s.execute(stmt))
        return removed


class RefreshTokenRecord:
    __slots__ = ("expires_at", "issued_at", "session_id", "token_hash", "used_at")

    def __init__(
        self,
        token_hash: str,
        session_id: str,
        issued_at: datetime,
        expires_at: datetime,
        used_at: datetime | None,
    ) -> None:
        self.token_hash = token_hash
        self.session_id = session_id
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.used_at = used_at


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        created_at=_utc_required(row.created_at),
        updated_at=_utc_required(row.updated_at),
        locked_until=_utc(row.locked_until),
    )


def _credential(row: Row[Any]) -> Credential:
    return Credential(
        id=row.id,
        user_id=row.user_id,
        credential_id=bytes(row.credential_id),
        public_key=bytes(row.public_key),
        sign_count=int(row.sign_count),
        transports=tuple(row.transports or ()),
        aaguid=row.aaguid,
        backed_up=bool(row.backed_up),
        name=row.name,
        attestation_format=row.attestation_format,
        created_at=_utc_required(row.created_at),
        last_used_at=_utc(row.last_used_at),
    )


def _session(row: Row[Any]) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        created_at=_utc_required(row.created_at),
        last_used_at=_utc_required(row.last_used_at),
        expires_at=_utc_required(row.expires_at),
        user_agent=row.user_agent,
        ip_address=row.ip_address,
        revoked_at=_utc(row.revoked_at),
        revoked_reason=row.revoked_reason,
    )


# The proof-of-humanity tables (and the identity outbox) join this metadata: one alembic
# history for the schema. Imported last: that module imports `metadata` from here.
from services.identity import humanity_storage as _humanity_storage  # noqa: E402, F401
