"""Passkeys (`credentials`): a user's WebAuthn credentials and their sign counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.identity.domain import Credential
from services.identity.storage.common import Store, metadata, rowcount, ts
from services.kit.clock import as_utc, as_utc_or_none

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
    ts("created_at"),
    ts("last_used_at", nullable=True),
    Index(None, "user_id"),
)


class CredentialStore(Store):
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
        return rowcount(result) == 1

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
        return rowcount(result) == 1


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
        created_at=as_utc(row.created_at),
        last_used_at=as_utc_or_none(row.last_used_at),
    )
