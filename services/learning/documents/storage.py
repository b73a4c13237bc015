"""Document tables: `documents` (one row per stored document, keyed by owner, context hash
and document id) and `document_usage` (bytes and documents per owner, kept in the same
transaction as every write so the quota check and the write are one atomic step).

A writer reads the document with its row locked (SELECT ... FOR UPDATE), checks the
preconditions against what it read, and writes compare-and-set on that ETag: writers of
one document take turns, so of 20 that read the same version and send it as If-Match
exactly one succeeds, and merges without preconditions each apply on top of the last.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import (
    ID,
    IRI,
    insert_ignore,
    metadata,
    ts_column,
    utc_required,
)
from services.learning.documents.domain import (
    MAX_CONTENT_TYPE,
    MAX_DOCUMENT_ID,
    DocumentKey,
    DocumentRecord,
)

documents = Table(
    "documents",
    metadata,
    Column("owner_id", String(ID), primary_key=True),
    Column("context_hash", String(64), primary_key=True),
    Column("document_id", String(MAX_DOCUMENT_ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("activity_id", String(IRI), nullable=False, default=""),
    Column("agent_key", String(IRI), nullable=False, default=""),
    Column("registration", String(36), nullable=False, default=""),
    Column("content", LargeBinary, nullable=False),
    Column("content_type", String(MAX_CONTENT_TYPE), nullable=False),
    Column("etag", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    ts_column("updated"),
    Index(None, "owner_id", "context_hash", "updated"),
)

document_usage = Table(
    "document_usage",
    metadata,
    Column("owner_id", String(ID), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
    Column("documents", Integer, nullable=False),
)


def _where(key: DocumentKey) -> list[Any]:
    t = documents
    return [
        t.c.owner_id == key.owner_id,
        t.c.context_hash == key.context_hash,
        t.c.document_id == key.document_id,
    ]


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, key: DocumentKey, *, for_update: bool = False) -> DocumentRecord | None:
        """The stored document; `for_update` locks its row until the transaction ends
        (PostgreSQL; SQLite write transactions already hold the database lock), so
        concurrent writers of one document take turns instead of failing each other."""
        t = documents
        query = select(t.c.content, t.c.content_type, t.c.etag, t.c.updated).where(*_where(key))
        if for_update:
            query = query.with_for_update()
        row = (await self.s.execute(query)).first()
        if row is None:
            return None
        return DocumentRecord(
            key=key,
            content=bytes(row.content),
            content_type=row.content_type,
            etag=row.etag,
            updated=utc_required(row.updated),
        )

    async def insert(self, record: DocumentRecord) -> None:
        k = record.key
        await self.s.execute(
            insert(documents).values(
                owner_id=k.owner_id,
                context_hash=k.context_hash,
                document_id=k.document_id,
                kind=k.kind.value,
                activity_id=k.activity_id,
                agent_key=k.agent_key,
                registration=k.registration,
                content=record.content,
                content_type=record.content_type,
                etag=record.etag,
                size=record.size,
                updated=record.updated,
            )
        )

    async def replace(self, record: DocumentRecord, expected_etag: str) -> bool:
        """Compare-and-set: False when the stored ETag is no longer `expected_etag`."""
        t = documents
        result = await self.s.execute(
            update(t)
            .where(*_where(record.key), t.c.etag == expected_etag)
            .values(
                content=record.content,
                content_type=record.content_type,
                etag=record.etag,
                size=record.size,
                updated=record.updated,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def delete(self, key: DocumentKey, expected_etag: str) -> bool:
        t = documents
        result = await self.s.execute(delete(t).where(*_where(key), t.c.etag == expected_etag))
        return bool(getattr(result, "rowcount", 0))

    async def delete_context(self, key: DocumentKey) -> tuple[int, int]:
        """Delete every document of the context: (documents, bytes) removed."""
        t = documents
        where = [t.c.owner_id == key.owner_id, t.c.context_hash == key.context_hash]
        row = (
            await self.s.execute(
                select(func.count(), func.coalesce(func.sum(t.c.size), 0)).where(*where)
            )
        ).one()
        await self.s.execute(delete(t).where(*where))
        return int(row[0]), int(row[1])

    async def list_ids(
        self, key: DocumentKey, since: datetime | None
    ) -> tuple[list[str], datetime | None]:
        t = documents
        query = select(t.c.document_id, t.c.updated).where(
            t.c.owner_id == key.owner_id, t.c.context_hash == key.context_hash
        )
        if since is not None:
            query = query.where(t.c.updated > since)
        rows = (await self.s.execute(query.order_by(t.c.document_id))).all()
        latest = max((utc_required(r.updated) for r in rows), default=None)
        return [r.document_id for r in rows], latest

    async def add_usage(
        self,
        owner_id: str,
        delta_bytes: int,
        delta_documents: int,
        max_bytes: int,
        max_documents: int,
    ) -> bool:
        """Add to the owner's usage unless it would pass a limit (growth only is checked:
        shrinking always succeeds). False when a limit would be passed."""
        u = document_usage
        await insert_ignore(self.s, u, {"owner_id": owner_id, "bytes": 0, "documents": 0})
        conditions = [u.c.owner_id == owner_id]
        if delta_bytes > 0:
            conditions.append(u.c.bytes + delta_bytes <= max_bytes)
        if delta_documents > 0:
            conditions.append(u.c.documents + delta_documents <= max_documents)
        result = await self.s.execute(
            update(u)
            .where(*conditions)
            .values(bytes=u.c.bytes + delta_bytes, documents=u.c.documents + delta_documents)
        )
        return bool(getattr(result, "rowcount", 0))
