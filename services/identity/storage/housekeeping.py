"""Housekeeping: dropping what has expired from every identity table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete

from services.identity.storage.ceremonies import ceremonies
from services.identity.storage.common import Store, rowcount
from services.identity.storage.limits import auth_failures, rate_buckets
from services.identity.storage.sessions import refresh_tokens, sessions


class HousekeepingStore(Store):
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
            removed += rowcount(await self.s.execute(stmt))
        return removed
