"""The certifications table and its queries (a mixin of `MarketplaceRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.clock import as_utc_or_none
from services.marketplace.common.storage import Store, metadata, ts
from services.marketplace.verification.domain import Certification

certifications = Table(
    "certifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("space_id", String(36), ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("issuer", String(200), nullable=False),
    Column("reference", String(200), nullable=False),
    ts("valid_until", nullable=True),
    Column("child_protection", Boolean, nullable=False, default=False),
    Column("attested_by", String(64), nullable=True),
    ts("attested_at", nullable=True),
    Column("anchor_tx_hash", String(80), nullable=False, default=""),
    Column("request_id", String(100), nullable=True),
    ts("created_at"),
    UniqueConstraint("space_id", "request_id"),
    Index(None, "space_id"),
)


def _certification(row: Row[Any]) -> Certification:
    return Certification(
        id=row.id,
        space_id=row.space_id,
        name=row.name,
        issuer=row.issuer,
        reference=row.reference,
        valid_until=as_utc_or_none(row.valid_until),
        child_protection=row.child_protection,
        attested_by=row.attested_by or "",
        attested_at=as_utc_or_none(row.attested_at),
        anchor_tx_hash=row.anchor_tx_hash,
        created_at=as_utc_or_none(row.created_at),
    )


async def certifications_of(
    session: AsyncSession, space_ids: Sequence[str]
) -> dict[str, list[Certification]]:
    if not space_ids:
        return {}
    query = (
        select(certifications)
        .where(certifications.c.space_id.in_(list(space_ids)))
        .order_by(certifications.c.created_at, certifications.c.id)
    )
    found: dict[str, list[Certification]] = {}
    for row in (await session.execute(query)).all():
        found.setdefault(row.space_id, []).append(_certification(row))
    return found


class CertificationStore(Store):
    """Queries of the certifications table, over one session."""

    async def insert_certification(self, cert: Certification, request_id: str) -> None:
        await self.session.execute(
            insert(certifications).values(
                id=cert.id,
                space_id=cert.space_id,
                name=cert.name,
                issuer=cert.issuer,
                reference=cert.reference,
                valid_until=cert.valid_until,
                child_protection=False,
                attested_by=None,
                attested_at=None,
                anchor_tx_hash="",
                request_id=request_id or None,
                created_at=cert.created_at,
            )
        )

    async def certification_id_by_request(self, space_id: str, request_id: str) -> str | None:
        query = select(certifications.c.id).where(
            certifications.c.space_id == space_id, certifications.c.request_id == request_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def attest_certification(
        self, cert_id: str, *, by: str, at: datetime, child_protection: bool
    ) -> None:
        await self.session.execute(
            update(certifications)
            .where(certifications.c.id == cert_id)
            .values(attested_by=by, attested_at=at, child_protection=child_protection)
        )

    async def clear_attestations(self, space_id: str) -> None:
        await self.session.execute(
            update(certifications)
            .where(certifications.c.space_id == space_id)
            .values(attested_by=None, attested_at=None, child_protection=False)
        )
