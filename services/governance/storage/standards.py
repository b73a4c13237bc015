"""Community standards: the adopted, versioned documents of a community."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Row

from services.governance import domain as d
from services.governance.storage.common import Store, anchor_to_json, metadata, ts
from services.kit.clock import as_utc

standards = Table(
    "standards",
    metadata,
    Column("community_id", String(36), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content", Text, nullable=False),
    Column("content_type", String(d.MAX_CONTENT_TYPE_CHARS), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("proposal_id", String(36), nullable=True),
    ts("adopted_at"),
    Column("anchor", JSON, nullable=False),
    ForeignKeyConstraint(["community_id"], ["communities.id"], ondelete="CASCADE"),
)


def _standards(row: Row[Any]) -> d.StandardsDocument:
    return d.StandardsDocument(
        community_id=row.community_id,
        kind=d.StandardsKind(row.kind),
        version=row.version,
        content=row.content,
        content_type=row.content_type,
        content_hash=row.content_hash,
        proposal_id=row.proposal_id or "",
        adopted_at=as_utc(row.adopted_at),
    )


class StandardsStore(Store):
    async def latest_standards_version(self, community_id: str, kind: d.StandardsKind) -> int:
        value = (
            await self.session.execute(
                select(func.max(standards.c.version)).where(
                    standards.c.community_id == community_id, standards.c.kind == kind.value
                )
            )
        ).scalar_one_or_none()
        return int(value or 0)

    async def insert_standards(self, doc: d.StandardsDocument) -> None:
        await self.session.execute(
            insert(standards).values(
                community_id=doc.community_id,
                kind=doc.kind.value,
                version=doc.version,
                content=doc.content,
                content_type=doc.content_type,
                content_hash=doc.content_hash,
                proposal_id=doc.proposal_id or None,
                adopted_at=doc.adopted_at,
                anchor=anchor_to_json(d.Anchor()),
            )
        )

    async def get_standards(
        self, community_id: str, kind: d.StandardsKind, version: int
    ) -> d.StandardsDocument | None:
        stmt = select(standards).where(
            standards.c.community_id == community_id, standards.c.kind == kind.value
        )
        if version:
            stmt = stmt.where(standards.c.version == version)
        else:
            stmt = stmt.order_by(standards.c.version.desc()).limit(1)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else _standards(row)

    async def list_standards(
        self, community_id: str, kind: d.StandardsKind, offset: int, limit: int
    ) -> list[d.StandardsDocument]:
        rows = await self.session.execute(
            select(standards)
            .where(standards.c.community_id == community_id, standards.c.kind == kind.value)
            .order_by(standards.c.version.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_standards(r) for r in rows]
