"""Failed logins (`auth_failures`, for the account lockout) and rate limiting
(`rate_buckets`). Rate-limit keys (caller address, email) are stored as SHA-256 hex, so
the table holds no personal data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, ForeignKey, Index, String, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.identity.domain import TokenBucket
from services.identity.storage.common import Store, metadata, new_id, ts
from services.kit.clock import as_utc

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    ts("occurred_at"),
    Column("reason", String(200), nullable=False),
    Index(None, "user_id", "occurred_at"),
)


rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    ts("updated_at"),
)


class LimitStore(Store):
    async def record_auth_failure(self, user_id: str, now: datetime, reason: str) -> None:
        await self.s.execute(
            auth_failures.insert().values(
                id=new_id(), user_id=user_id, occurred_at=now, reason=reason[:200]
            )
        )

    async def count_auth_failures(self, user_id: str, since: datetime) -> int:
        count = await self.s.scalar(
            select(func.count())
            .select_from(auth_failures)
            .where(auth_failures.c.user_id == user_id, auth_failures.c.occurred_at > since)
        )
        return int(count or 0)

    async def clear_auth_failures(self, user_id: str) -> None:
        await self.s.execute(delete(auth_failures).where(auth_failures.c.user_id == user_id))

    async def take_rate_token(
        self, key_hash: str, now: datetime, *, capacity: float, refill_per_second: float
    ) -> float:
        """Spend one token of the bucket `key_hash`; returns the seconds to wait (0 = go).

        The bucket row is created full if missing (insert-or-ignore), then locked
        (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions hold the write lock),
        so replicas sharing the database share the limit.
        """
        insert = (
            postgresql.insert(rate_buckets)
            if self.dialect == "postgresql"
            else sqlite.insert(rate_buckets)
        )
        await self.s.execute(
            insert.values(
                key_hash=key_hash, tokens=capacity, updated_at=now
            ).on_conflict_do_nothing(index_elements=["key_hash"])
        )
        row = (
            await self.s.execute(
                select(rate_buckets).where(rate_buckets.c.key_hash == key_hash).with_for_update()
            )
        ).one()
        bucket = TokenBucket(tokens=float(row.tokens), updated_at=as_utc(row.updated_at))
        new_state, wait = bucket.take(now, capacity=capacity, refill_per_second=refill_per_second)
        await self.s.execute(
            update(rate_buckets)
            .where(rate_buckets.c.key_hash == key_hash)
            .values(tokens=new_state.tokens, updated_at=new_state.updated_at)
        )
        return wait
