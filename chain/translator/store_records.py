"""The translator's records: queue them and read them back (part of ``ChainStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from chain.translator.batching import Domain
from chain.translator.felts import felt_to_hex
from chain.translator.store_schema import (
    FAILED,
    PENDING,
    TOPIC_ANCHOR_FAILED,
    DuplicateRecord,
    NewRecord,
    RecordRow,
    StoreBase,
    _unbatched,
    _utc_required,
    outbox,
    records,
)
from services.kit.db import is_unique_violation
from services.kit.events import Event
from services.kit.events.outbox import enqueue


@dataclass(frozen=True, slots=True)
class QueuedRecords:
    """What :meth:`RecordStore.insert_records` did, by ``(domain, record_id)``."""

    inserted: dict[tuple[str, str], RecordRow]
    existing: dict[tuple[str, str], RecordRow]


class RecordStore(StoreBase):
    """The translator's records: queue them and read them back (part of ``ChainStore``)."""

    async def insert_record(self, new: NewRecord, *, failure: str | None = None) -> RecordRow:
        """Queue a record; raises :class:`DuplicateRecord` if its key exists. With
        ``failure`` the record is stored FAILED (never batched) and ``chain.anchor_failed``
        is announced in the same transaction: a rejected record stays visible."""
        now = self.clock.now()
        try:
            async with self.db.transaction() as s:
                inserted = await s.execute(
                    insert(records).values(_record_values(new, now, failure)).returning(*records.c)
                )
                row = inserted.one()
                if failure is not None:
                    await enqueue(
                        s,
                        outbox,
                        Event(
                            TOPIC_ANCHOR_FAILED,
                            key=new.learner_id or new.record_id,
                            payload={
                                "record_id": new.record_id,
                                "learner_id": new.learner_id,
                                "author_id": new.author_id,
                                "domain": new.domain.value,
                                "batch_id": None,
                                "root": None,
                                "leaf": felt_to_hex(new.leaf),
                                "leaf_encoding": new.leaf_encoding,
                                "leaf_index": None,
                                "status": FAILED,
                                "failure_reason": failure,
                            },
                            occurred_at=now,
                        ),
                    )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            existing = await self.get_record(new.domain, new.record_id)
            assert existing is not None
            raise DuplicateRecord(existing) from None
        return RecordRow.of(row)

    async def insert_records(self, news: Sequence[NewRecord]) -> QueuedRecords:
        """Queue several PENDING records with one multi-row INSERT. A key already stored
        (or repeated in ``news``) is not inserted again: its stored row is in
        ``existing``, for the caller to compare (:class:`DuplicateRecord` is the one-record
        form of this).

        On PostgreSQL outside a transaction (`Database.autocommit_session`: no BEGIN and
        COMMIT round trips): the INSERT is atomic on its own, and the rows it found taken
        are committed ones (ON CONFLICT waits for a concurrent insert to end), which the
        read after it sees. Should a larger list go in several INSERTs, what one of them
        stored stays: queuing is idempotent, a caller that retries gets those rows back."""
        if not news:
            return QueuedRecords({}, {})
        now = self.clock.now()
        postgres = self.db.dialect == "postgresql"
        insert_rows = pg_insert if postgres else sqlite_insert
        session = self.db.autocommit_session() if postgres else self.db.transaction()
        async with session as s:
            # Parameters as a list (executemany): SQLAlchemy's "insertmanyvalues" still
            # sends one multi-row INSERT .. RETURNING, from a statement compiled once;
            # `.values(rows)` was compiled anew for every page (its PostgreSQL form: 37 ms
            # of CPU for 100 rows, 150 ms for 256), the largest cost of an intake page.
            result = await s.execute(
                insert_rows(records).on_conflict_do_nothing().returning(*records.c),
                [_record_values(new, now, None) for new in news],
            )
            inserted = {(row.domain, row.record_id): RecordRow.of(row) for row in result}
            missing = {
                (new.domain.value, new.record_id)
                for new in news
                if (new.domain.value, new.record_id) not in inserted
            }
            existing: dict[tuple[str, str], RecordRow] = {}
            if missing:
                found = await s.execute(
                    select(records).where(
                        tuple_(records.c.domain, records.c.record_id).in_(sorted(missing))
                    )
                )
                existing = {(row.domain, row.record_id): RecordRow.of(row) for row in found}
        return QueuedRecords(inserted, existing)

    async def get_record(self, domain: Domain, record_id: str) -> RecordRow | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(records).where(
                        records.c.domain == domain.value, records.c.record_id == record_id
                    )
                )
            ).first()
        return None if row is None else RecordRow.of(row)

    async def records_of_batch(self, batch_id: int) -> list[RecordRow]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(records)
                    .where(records.c.batch_id == felt_to_hex(batch_id))
                    .order_by(records.c.leaf_index)
                )
            ).all()
        return [RecordRow.of(r) for r in rows]

    async def count_records(self, *, status: str | None = None) -> int:
        query = select(func.count()).select_from(records)
        if status is not None:
            query = query.where(records.c.status == status)
        async with self.db.session() as s:
            return int((await s.execute(query)).scalar_one())

    async def unbatched_by_domain(self) -> dict[Domain, tuple[int, datetime]]:
        """Per domain: (unbatched pending records, oldest submission time)."""
        query = (
            select(records.c.domain, func.count(), func.min(records.c.submitted_at))
            .where(_unbatched, records.c.status == PENDING)
            .group_by(records.c.domain)
        )
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
        return {Domain(d): (int(n), _utc_required(oldest)) for d, n, oldest in rows}

    async def unbatched_count(self) -> int:
        query = select(func.count()).select_from(records).where(_unbatched)
        async with self.db.session() as s:
            return int((await s.execute(query)).scalar_one())


def _record_values(new: NewRecord, now: datetime, failure: str | None) -> dict[str, Any]:
    return {
        "domain": new.domain.value,
        "record_id": new.record_id,
        "learner_id": new.learner_id,
        "author_id": new.author_id,
        "statement_sha256": new.statement_sha256.hex(),
        "signature": new.signature.hex(),
        "public_key": new.public_key.hex(),
        "leaf": felt_to_hex(new.leaf),
        "leaf_encoding": new.leaf_encoding,
        "status": PENDING if failure is None else FAILED,
        "failure_reason": failure,
        "attempts": 0,
        "submitted_at": now,
    }
