"""Sessions and refresh tokens (`sessions`, `refresh_tokens`). Refresh tokens are stored
hashed (SHA-256 hex) only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, select, update
from sqlalchemy.engine import Row

from services.identity.domain import Session
from services.identity.storage.common import Store, metadata, rowcount, ts
from services.kit.clock import as_utc, as_utc_or_none

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    ts("created_at"),
    ts("last_used_at"),
    ts("expires_at"),
    Column("user_agent", String(512), nullable=False, default=""),
    Column("ip_address", String(64), nullable=False, default=""),
    ts("revoked_at", nullable=True),
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
    ts("issued_at"),
    ts("expires_at"),
    ts("used_at", nullable=True),
    Index(None, "session_id"),
)


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


class SessionStore(Store):
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
        return rowcount(result) == 1

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
            issued_at=as_utc(row.issued_at),
            expires_at=as_utc(row.expires_at),
            used_at=as_utc_or_none(row.used_at),
        )

    async def retire_refresh_token(self, token_hash: str, now: datetime) -> bool:
        """Mark a refresh token used. False if it was already used: reuse."""
        result = await self.s.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return rowcount(result) == 1


def _session(row: Row[Any]) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc(row.last_used_at),
        expires_at=as_utc(row.expires_at),
        user_agent=row.user_agent,
        ip_address=row.ip_address,
        revoked_at=as_utc_or_none(row.revoked_at),
        revoked_reason=row.revoked_reason,
    )
