"""WebAuthn ceremonies (`ceremonies`): pending registrations and logins, each single use.
Their challenges are stored hashed (SHA-256 hex) only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, String, Table, select, update

from services.identity.domain import Ceremony, CeremonyKind
from services.identity.storage.common import Store, metadata, rowcount, ts
from services.kit.clock import as_utc, as_utc_or_none

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
    ts("created_at"),
    ts("expires_at"),
    ts("consumed_at", nullable=True),
    Index(None, "expires_at"),
)


class CeremonyStore(Store):
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
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at),
            consumed_at=as_utc_or_none(row.consumed_at),
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
        return rowcount(result) == 1
