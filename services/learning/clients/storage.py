"""The `lrs_clients` table (Basic auth secrets stored as SHA-256 only) and its repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import (
    ID,
    Cursor,
    mapping,
    metadata,
    page_rows,
    row_values,
    ts_column,
)

lrs_clients = Table(
    "lrs_clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key", String(64), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    ts_column("created_at"),
    ts_column("revoked_at", nullable=True),
    Index(None, "owner_id", "created_at"),
)


@dataclass(frozen=True)
class LrsClientRecord:
    id: str
    name: str
    key: str
    secret_hash: str
    owner_id: str
    created_at: datetime
    revoked_at: datetime | None


def _client(values: dict[str, Any]) -> LrsClientRecord:
    return LrsClientRecord(**values)


class LrsClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, client_id: str) -> LrsClientRecord | None:
        t = lrs_clients
        row = (await self.s.execute(select(t).where(t.c.id == client_id))).first()
        return _client(mapping(row)) if row is not None else None

    async def get_by_key(self, key: str) -> LrsClientRecord | None:
        t = lrs_clients
        row = (await self.s.execute(select(t).where(t.c.key == key))).first()
        return _client(mapping(row)) if row is not None else None

    async def insert(self, record: LrsClientRecord) -> None:
        await self.s.execute(insert(lrs_clients).values(**row_values(record, lrs_clients)))

    async def set_revoked(self, client_id: str, at: datetime) -> None:
        t = lrs_clients
        await self.s.execute(update(t).where(t.c.id == client_id).values(revoked_at=at))

    async def page_of_owner(
        self, owner_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[LrsClientRecord], Cursor | None]:
        t = lrs_clients
        return await page_rows(
            self.s, t, "created_at", [t.c.owner_id == owner_id], limit, cursor, _client
        )
