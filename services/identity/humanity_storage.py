"""Proof-of-humanity persistence: one enrollment per user and the identity outbox.

The tables join the identity schema's ``metadata`` (``services.identity.storage``), so the
one alembic history of schema ``identity`` creates them. Stored per enrollment: the fuzzy
extractor's helper data (public but sensitive: see docs/humanity.md, never logged, never
on chain), the commitment and the Ed25519 public key, and the state of the on-chain
registration. No image, genome, iris code, genotype or secret key is stored.

The duplicate-check index (``services.identity.humanity.index``) keeps each enrollment's
keyed tags in ``humanity_index_tags`` (one row per tag, looked up by tag) and the id of the
key they were made with in ``humanity_enrollments.index_key_id``; an enrollment without
tags under the current key (enrolled before the index, or under another key) is a
candidate of every duplicate check.

Registration states: ``pending`` (not yet accepted on chain: no chain configured, the
chain or translator unreachable, or a transaction in flight; the registration job
retries), ``registered`` (accepted on chain: ``registry_tx_hash`` set) and ``failed``
(refused by the chain for good; ``registration_error`` says why).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.identity.humanity.index import IndexKey, Probe
from services.identity.storage import metadata
from services.kit.clock import as_utc_or_none
from services.kit.db import Database
from services.kit.events.outbox import outbox_table

PENDING = "pending"
REGISTERED = "registered"
FAILED = "failed"
REGISTRATION_STATES = (PENDING, REGISTERED, FAILED)


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


humanity_enrollments = Table(
    "humanity_enrollments",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # Public id of the stored helper data (EnrollHumanityResponse.helper_data_id).
    Column("id", String(36), nullable=False, unique=True),
    Column("helper_data", LargeBinary, nullable=False),
    # 0x-prefixed lowercase hex felt (the registry's commitment).
    Column("commitment", String(66), nullable=False, unique=True),
    # 64 lowercase hex characters.
    Column("ed25519_public_key", String(64), nullable=False, unique=True),
    Column("request_id", String(128), nullable=True),
    Column("registration_state", String(16), nullable=False),
    Column("registry_tx_hash", String(66), nullable=False, default=""),
    Column("registration_attempts", Integer, nullable=False, default=0),
    Column("registration_error", String(500), nullable=False, default=""),
    _ts("next_attempt_at", nullable=True),
    _ts("enrolled_at"),
    _ts("registered_at", nullable=True),
    _ts("updated_at"),
    # Id of the key the enrollment's index tags were made with; NULL: no tags.
    Column("index_key_id", String(16), nullable=True),
    Index(None, "registration_state", "next_attempt_at"),
)

humanity_index_tags = Table(
    "humanity_index_tags",
    metadata,
    Column(
        "user_id",
        String(36),
        ForeignKey("humanity_enrollments.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # HMAC-SHA256(index key, band, value) truncated to a signed 64-bit integer.
    Column("tag", BigInteger, primary_key=True),
    Index(None, "tag"),
)

# The identity service's transactional outbox (identity.humanity_verified, ...).
outbox = outbox_table(metadata)


@dataclass(frozen=True)
class EnrollmentRecord:
    """One stored enrollment. ``helper_data`` is sensitive: never log or return it."""

    id: str
    user_id: str
    helper_data: bytes = field(repr=False)
    commitment: str
    ed25519_public_key: str
    request_id: str | None
    registration_state: str
    registry_tx_hash: str
    registration_attempts: int
    registration_error: str
    next_attempt_at: datetime | None
    enrolled_at: datetime
    registered_at: datetime | None
    updated_at: datetime
    index_key_id: str | None = None

    @property
    def registered_on_chain(self) -> bool:
        return self.registration_state == REGISTERED


def _record(row: Row[Any]) -> EnrollmentRecord:
    enrolled_at = as_utc_or_none(row.enrolled_at)
    updated_at = as_utc_or_none(row.updated_at)
    assert enrolled_at is not None and updated_at is not None
    return EnrollmentRecord(
        id=row.id,
        user_id=row.user_id,
        helper_data=bytes(row.helper_data),
        commitment=row.commitment,
        ed25519_public_key=row.ed25519_public_key,
        request_id=row.request_id,
        registration_state=row.registration_state,
        registry_tx_hash=row.registry_tx_hash,
        registration_attempts=int(row.registration_attempts),
        registration_error=row.registration_error,
        next_attempt_at=as_utc_or_none(row.next_attempt_at),
        enrolled_at=enrolled_at,
        registered_at=as_utc_or_none(row.registered_at),
        updated_at=updated_at,
        index_key_id=row.index_key_id,
    )


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


class HumanityRepository:
    """Queries and writes of the enrollment table, within the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, user_id: str) -> EnrollmentRecord | None:
        t = humanity_enrollments
        row = (await self.s.execute(select(t).where(t.c.user_id == user_id))).first()
        return _record(row) if row else None

    async def helpers(self) -> list[tuple[str, bytes]]:
        """``(user_id, helper_data)`` of every enrollment (a full scan)."""
        t = humanity_enrollments
        rows = await self.s.execute(
            select(t.c.user_id, t.c.helper_data).order_by(t.c.enrolled_at, t.c.user_id)
        )
        return [(str(uid), bytes(blob)) for uid, blob in rows]

    def _among(self, column: Column[Any], values: list[int] | list[str]) -> ColumnElement[bool]:
        """``column`` is one of ``values``, with the list as one parameter: an array on
        PostgreSQL, a JSON array read by ``json_each`` on SQLite. A probe has ~4 000 tags;
        ``IN`` lists of that many bound values cost PostgreSQL ~5x more (planning, and a
        statement text per list length) and run into SQLite's bound-variable limit."""
        if self.s.get_bind().dialect.name == "postgresql":
            return column == func.any(bindparam(None, values, type_=ARRAY(column.type)))
        listed = func.json_each(bindparam(None, json.dumps(values), type_=String))
        return column.in_(select(listed.table_valued("value").c.value))

    async def tag_hits(self, tags: Sequence[int]) -> list[tuple[str, int]]:
        """``(user_id, tag)`` of every stored index tag among ``tags`` (one statement)."""
        t = humanity_index_tags
        if not tags:
            return []
        matches = self._among(t.c.tag, [int(tag) for tag in tags])
        rows = await self.s.execute(select(t.c.user_id, t.c.tag).where(matches))
        return [(str(uid), int(tag)) for uid, tag in rows]

    async def candidate_helpers(
        self, user_ids: Collection[str], key_id: str
    ) -> list[tuple[str, bytes]]:
        """``(user_id, helper_data)`` of ``user_ids`` and of every enrollment without tags
        under ``key_id`` (the duplicate check's candidates), oldest first (one statement)."""
        t = humanity_enrollments
        wanted = t.c.index_key_id.is_(None) | (t.c.index_key_id != key_id)
        if user_ids:
            wanted = wanted | self._among(t.c.user_id, sorted(user_ids))
        rows = await self.s.execute(
            select(t.c.user_id, t.c.helper_data)
            .where(wanted)
            .order_by(t.c.enrolled_at, t.c.user_id)
        )
        return [(str(uid), bytes(blob)) for uid, blob in rows]

    async def insert(self, record: EnrollmentRecord, index_tags: Sequence[int] = ()) -> None:
        """Store an enrollment and its index tags (``record.index_key_id`` names their key)."""
        await self.s.execute(
            humanity_enrollments.insert().values(
                user_id=record.user_id,
                id=record.id,
                helper_data=record.helper_data,
                commitment=record.commitment,
                ed25519_public_key=record.ed25519_public_key,
                request_id=record.request_id,
                registration_state=record.registration_state,
                registry_tx_hash=record.registry_tx_hash,
                registration_attempts=record.registration_attempts,
                registration_error=record.registration_error,
                next_attempt_at=record.next_attempt_at,
                enrolled_at=record.enrolled_at,
                registered_at=record.registered_at,
                updated_at=record.updated_at,
                index_key_id=record.index_key_id if index_tags else None,
            )
        )
        if index_tags:
            await self.s.execute(
                humanity_index_tags.insert(),
                [{"user_id": record.user_id, "tag": tag} for tag in dict.fromkeys(index_tags)],
            )

    async def mark_registered(self, user_id: str, tx_hash: str, now: datetime) -> bool:
        """Pending -> registered. False when it was not pending (another replica won)."""
        t = humanity_enrollments
        result = await self.s.execute(
            update(t)
            .where(t.c.user_id == user_id, t.c.registration_state == PENDING)
            .values(
                registration_state=REGISTERED,
                registry_tx_hash=tx_hash,
                registration_error="",
                next_attempt_at=None,
                registered_at=now,
                updated_at=now,
                registration_attempts=t.c.registration_attempts + 1,
            )
        )
        return _rowcount(result) == 1

    async def record_attempt(
        self,
        user_id: str,
        *,
        state: str,
        error: str,
        tx_hash: str,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> None:
        """An attempt that did not register: still pending (retry at ``next_attempt_at``)
        or failed for good."""
        t = humanity_enrollments
        await self.s.execute(
            update(t)
            .where(t.c.user_id == user_id, t.c.registration_state == PENDING)
            .values(
                registration_state=state,
                registration_error=error[:500],
                registry_tx_hash=tx_hash,
                next_attempt_at=next_attempt_at,
                updated_at=now,
                registration_attempts=t.c.registration_attempts + 1,
            )
        )

    async def due(self, now: datetime, limit: int) -> Sequence[EnrollmentRecord]:
        """Pending registrations whose next attempt is due, oldest first."""
        t = humanity_enrollments
        rows = await self.s.execute(
            select(t)
            .where(
                t.c.registration_state == PENDING,
                (t.c.next_attempt_at.is_(None)) | (t.c.next_attempt_at <= now),
            )
            .order_by(t.c.enrolled_at, t.c.user_id)
            .limit(limit)
        )
        return [_record(row) for row in rows.all()]


class IndexedHelperStore:
    """The enrolled helper data as the pipeline's ``EnrolledTemplateStore``.

    The pipeline runs in a worker thread and asks for candidates once it has the
    capture's tags; the lookup runs on the service's event loop (``loop``) and the thread
    waits for it. Candidates: the enrollments with enough tags in common with the capture,
    and every enrollment without tags under ``index_key``.
    """

    LOOKUP_TIMEOUT_S = 60.0

    def __init__(self, db: Database, index_key: IndexKey, loop: asyncio.AbstractEventLoop) -> None:
        self._db = db
        self._key = index_key
        self._loop = loop

    @property
    def index_key(self) -> IndexKey:
        return self._key

    def candidates(self, probe: Probe) -> list[tuple[str, bytes]]:
        lookup = asyncio.run_coroutine_threadsafe(self._candidates(probe), self._loop)
        return lookup.result(timeout=self.LOOKUP_TIMEOUT_S)

    async def _candidates(self, probe: Probe) -> list[tuple[str, bytes]]:
        async with self._db.session() as session:
            repository = HumanityRepository(session)
            hits = await repository.tag_hits(probe.tags())
            return await repository.candidate_helpers(probe.candidates(hits), self._key.key_id)
