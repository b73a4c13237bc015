"""Signing keys: custodial key records, registered device keys and their directory
registrations (part of ``ChainStore``)."""

from __future__ import annotations

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.store_schema import (
    PENDING,
    StoreBase,
    key_records,
    key_registrations,
    registered_keys,
)
from services.kit.db import is_unique_violation
from services.kit.errors import AlreadyExists


class KeyStore(StoreBase):
    """Signing keys: custodial key records, registered device keys and their directory"""

    # -- keys -------------------------------------------------------------------------------

    async def get_key_record(self, learner_id: str) -> bytes | None:
        async with self.db.session() as s:
            value = (
                await s.execute(
                    select(key_records.c.record).where(key_records.c.learner_id == learner_id)
                )
            ).scalar_one_or_none()
        return None if value is None else bytes(value)

    async def put_key_record(
        self, learner_id: str, record: bytes, public_key: bytes, custody: str = "custodial"
    ) -> bytes:
        """Store a new custodial key of a user or service (``learner_id`` is its holder),
        queued for the on-chain key directory in the same transaction; if another request
        stored one first, return that."""
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    insert(key_records).values(
                        learner_id=learner_id,
                        record=record,
                        public_key=public_key.hex(),
                        created_at=self.clock.now(),
                    )
                )
                await self._queue_key_registration(s, public_key, learner_id, custody)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            existing = await self.get_key_record(learner_id)
            assert existing is not None
            return existing
        return record

    async def key_records_after(self, learner_id: str, limit: int) -> list[tuple[str, bytes]]:
        """``(learner_id, record)`` of custodial keys after ``learner_id``, in id order."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(key_records.c.learner_id, key_records.c.record)
                .where(key_records.c.learner_id > learner_id)
                .order_by(key_records.c.learner_id)
                .limit(limit)
            )
            return [(row.learner_id, bytes(row.record)) for row in rows]

    async def replace_key_record(self, learner_id: str, old: bytes, new: bytes) -> bool:
        """Swap a learner's record for ``new`` only if it is still ``old`` (the same key
        pair re-wrapped; a concurrent swap makes this one a no-op)."""
        async with self.db.transaction() as s:
            result = await s.execute(
                update(key_records)
                .where(key_records.c.learner_id == learner_id, key_records.c.record == old)
                .values(record=new)
            )
        return bool(getattr(result, "rowcount", 0))

    async def registered_key(self, learner_id: str) -> bytes | None:
        async with self.db.session() as s:
            value = (
                await s.execute(
                    select(registered_keys.c.public_key).where(
                        registered_keys.c.learner_id == learner_id
                    )
                )
            ).scalar_one_or_none()
        return None if value is None else bytes.fromhex(value)

    async def set_registered_key(self, learner_id: str, public_key: bytes, source: str) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            result = await s.execute(
                update(registered_keys)
                .where(registered_keys.c.learner_id == learner_id)
                .values(public_key=public_key.hex(), source=source, registered_at=now)
            )
            if not getattr(result, "rowcount", 0):
                await s.execute(
                    insert(registered_keys).values(
                        learner_id=learner_id,
                        public_key=public_key.hex(),
                        source=source,
                        registered_at=now,
                    )
                )
            await self._queue_key_registration(s, public_key, learner_id, "device")

    async def _queue_key_registration(
        self, s: AsyncSession, public_key: bytes, holder_id: str, custody: str
    ) -> None:
        """Queue a key for the on-chain key directory (once: a key has one holder)."""
        known = (
            await s.execute(
                select(key_registrations.c.holder_id).where(
                    key_registrations.c.public_key == public_key.hex()
                )
            )
        ).first()
        if known is not None:
            if known[0] != holder_id:
                raise AlreadyExists(f"key {public_key.hex()} belongs to another holder")
            return
        await s.execute(
            insert(key_registrations).values(
                public_key=public_key.hex(),
                holder_id=holder_id,
                custody=custody,
                state=PENDING,
                attempts=0,
                created_at=self.clock.now(),
            )
        )
