"""Webhook tables: `webhook_sources` (HMAC secrets kept as given, since HMAC needs them;
Basic auth passwords as SHA-256 only) and `webhook_deliveries` (a delivery's body hash ->
the statement ids it produced), with their records and repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import Column, Index, Integer, String, Table, insert, select, update
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

webhook_sources = Table(
    "webhook_sources",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    Column("course_id", String(ID), nullable=True),
    # HMAC kinds (Moodle, Canvas): the shared secret. Basic kinds: NULL.
    Column("hmac_secret", String(256), nullable=True),
    # Basic kinds (Learning Locker, SCORM Cloud): SHA-256 hex of the password.
    Column("password_hash", String(64), nullable=True),
    ts_column("created_at"),
    ts_column("revoked_at", nullable=True),
    Index(None, "owner_id", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("source_id", String(36), primary_key=True),
    Column("body_sha256", String(64), primary_key=True),
    Column("statement_ids", SAJSON, nullable=False),
    Column("skipped", Integer, nullable=False, default=0),
    ts_column("received_at"),
)


@dataclass(frozen=True)
class WebhookSourceRecord:
    id: str
    name: str
    kind: str
    owner_id: str
    course_id: str | None
    hmac_secret: str | None
    password_hash: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def endpoint_path(self) -> str:
        return f"/webhooks/{self.id}"


@dataclass(frozen=True)
class WebhookDelivery:
    source_id: str
    body_sha256: str
    statement_ids: list[str]
    skipped: int
    received_at: datetime


def _source(values: dict[str, Any]) -> WebhookSourceRecord:
    return WebhookSourceRecord(**values)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_source(self, source_id: str) -> WebhookSourceRecord | None:
        t = webhook_sources
        row = (await self.s.execute(select(t).where(t.c.id == source_id))).first()
        return _source(mapping(row)) if row is not None else None

    async def insert_source(self, record: WebhookSourceRecord) -> None:
        await self.s.execute(insert(webhook_sources).values(**row_values(record, webhook_sources)))

    async def set_revoked(self, source_id: str, at: datetime) -> None:
        t = webhook_sources
        await self.s.execute(update(t).where(t.c.id == source_id).values(revoked_at=at))

    async def page_of_owner(
        self, owner_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[WebhookSourceRecord], Cursor | None]:
        t = webhook_sources
        return await page_rows(
            self.s, t, "created_at", [t.c.owner_id == owner_id], limit, cursor, _source
        )

    async def get_delivery(self, source_id: str, body_sha256: str) -> WebhookDelivery | None:
        t = webhook_deliveries
        row = (
            await self.s.execute(
                select(t).where(t.c.source_id == source_id, t.c.body_sha256 == body_sha256)
            )
        ).first()
        if row is None:
            return None
        values = mapping(row)
        values["statement_ids"] = list(values["statement_ids"])
        values["skipped"] = int(values["skipped"])
        return WebhookDelivery(**values)

    async def insert_delivery(self, delivery: WebhookDelivery) -> None:
        await self.s.execute(
            insert(webhook_deliveries).values(**row_values(delivery, webhook_deliveries))
        )
