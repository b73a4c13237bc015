"""Revoking credentials inside a passport transaction.

A revocation marks the credential row and bumps its status list's ``revision``; the
list is re-signed by its issuer's key and republished after the transaction, by the
caller or by the publisher job (:mod:`services.passport.credentials.service`). The
passport calls these from its own transactions: when a statement in a credential is
voided, and when the share link a credential was issued for is revoked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.passport.credentials.domain import RevocationReason
from services.passport.credentials.storage import (
    credential_statements,
    credentials,
    status_lists,
)


async def revoke_rows(
    s: AsyncSession, credential_ids: list[str], reason: RevocationReason, now: datetime
) -> list[str]:
    """Revoke the active ones of ``credential_ids``; returns the status lists to republish."""
    if not credential_ids:
        return []
    c = credentials.c
    rows = (
        await s.execute(
            select(c.id, c.status_list_id).where(c.id.in_(credential_ids), c.revoked_at.is_(None))
        )
    ).all()
    if not rows:
        return []
    await s.execute(
        update(credentials)
        .where(c.id.in_([r.id for r in rows]), c.revoked_at.is_(None))
        .values(revoked_at=now, revocation_reason=reason.value)
    )
    lists = sorted({r.status_list_id for r in rows})
    await s.execute(
        update(status_lists)
        .where(status_lists.c.id.in_(lists))
        .values(revision=status_lists.c.revision + 1, updated_at=now)
    )
    return lists


async def revoke_for_voided_statement(
    s: AsyncSession, owner_id: str, statement_id: str, now: datetime
) -> list[str]:
    """Every credential of ``owner_id`` that carries the voided statement."""
    ids = (
        await s.execute(
            select(credentials.c.id)
            .join(
                credential_statements,
                credential_statements.c.credential_id == credentials.c.id,
            )
            .where(
                credential_statements.c.statement_id == statement_id,
                credentials.c.owner_id == owner_id,
            )
        )
    ).scalars()
    return await revoke_rows(s, list(ids), RevocationReason.VOIDED_STATEMENT, now)


async def revoke_for_share_link(s: AsyncSession, link_id: str, now: datetime) -> list[str]:
    """Every credential issued for the revoked share link."""
    ids = (
        await s.execute(select(credentials.c.id).where(credentials.c.share_link_id == link_id))
    ).scalars()
    return await revoke_rows(s, list(ids), RevocationReason.WITHDRAWN_SHARE, now)


__all__ = ["revoke_for_share_link", "revoke_for_voided_statement", "revoke_rows"]
