"""Persistence of the chain translator: tables in the ``chain`` schema and the repository.

Everything the anchoring pipeline knows lives here, so a crash loses nothing:

* ``records``: one row per submitted leaf, unique on ``(domain, record_id)``. A record is
  *unbatched* while ``batch_id`` is NULL; sealing a batch assigns ``batch_id``,
  ``leaf_index`` and the inclusion ``proof`` to its records in the same transaction that
  creates the batch row.
* ``batches``: ``seq`` is the database-backed sequence (an autoincrement primary key, so
  unique across replicas on both engines); ``batch_id = make_batch_id(domain, seq)``.
  Batch states: ``sealed`` (closed, not yet accepted by the chain), ``submitted`` (our
  transaction succeeded; waiting for the chain watcher to confirm the event),
  ``anchored`` (confirmed from chain data: the ``BatchAnchored`` event or ``get_batch``),
  ``failed`` (gave up; ``last_error``). Records follow their batch:
  sealed/submitted -> PENDING, anchored -> ANCHORED, failed -> FAILED.
* ``records.author_id``: who signed a learning record (:mod:`chain.translator.authors`):
  the learner, another user or a Keiko service; empty for unsigned records.
* ``key_records``: custodial Ed25519 keys of users and services (``KeyVault`` records,
  encrypted under the KEK), keyed by holder id.
* ``registered_keys``: users' registered Ed25519 public keys (device-signed mode).
* ``key_registrations``: every signing key the translator uses or accepts, and its binding
  in the on-chain key directory (:mod:`chain.translator.key_directory`): pending until the
  registrar's transaction lands, then the block and transaction that bound it.
* ``humanity``: humanity registrations sent through the translator.
* ``cursors``: the chain watcher's persisted position (block range + continuation token).
* ``outbox``: events (``chain.interaction_anchored``, ``chain.batch_anchored``,
  ``chain.anchor_failed``) written in the transaction of the state change they announce.

Hex felts are stored as lowercase ``0x`` strings; byte strings as plain lowercase hex.
SQLite returns naive datetimes: every value written is UTC and read back as UTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chain.translator.batching import BatchPolicy, Domain, SealedBatch, make_batch_id
from chain.translator.felts import felt_to_hex
from services.kit.clock import Clock
from services.kit.db import NAMING_CONVENTION, Database, is_unique_violation
from services.kit.errors import AlreadyExists
from services.kit.events import Event
from services.kit.events.outbox import enqueue, enqueue_many, outbox_table

log = structlog.get_logger("keiko.chain.storage")

SCHEMA = "chain"
# alembic revisions of this schema: upgrade(db, "chain", MIGRATIONS_DIR)
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

_SEQ = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only

records = Table(
    "records",
    metadata,
    Column("seq", _SEQ, primary_key=True),
    Column("domain", String(16), nullable=False),
    Column("record_id", String(200), nullable=False),
    Column("learner_id", String(200), nullable=False),
    Column("author_id", String(200), nullable=False, server_default=""),
    Column("statement_sha256", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("leaf", String(66), nullable=False),
    Column("status", String(16), nullable=False),
    Column("batch_id", String(66), nullable=True),
    Column("leaf_index", Integer, nullable=True),
    Column("proof", JSON, nullable=True),
    Column("root", String(66), nullable=True),
    Column("block", BigInteger, nullable=True),
    Column("tx_hash", String(66), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("batched_at", DateTime(timezone=True), nullable=True),
    Column("anchored_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("domain", "record_id"),
)
Index("ix_records_batch_id", records.c.batch_id)
Index("ix_records_learner_id", records.c.learner_id)
_unbatched = records.c.batch_id.is_(None)
Index(
    "ix_records_unbatched",
    records.c.domain,
    records.c.seq,
    postgresql_where=_unbatched,
    sqlite_where=_unbatched,
)

batches = Table(
    "batches",
    metadata,
    Column("seq", _SEQ, primary_key=True),
    Column("batch_id", String(66), nullable=True, unique=True),
    Column("domain", String(16), nullable=False),
    Column("root", String(66), nullable=True),
    Column("leaf_count", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("tx_hash", String(66), nullable=True),
    Column("block", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("confirmed_by", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("anchored_at", DateTime(timezone=True), nullable=True),
)
Index("ix_batches_state_next_attempt_at", batches.c.state, batches.c.next_attempt_at)

key_records = Table(
    "key_records",
    metadata,
    Column("learner_id", String(512), primary_key=True),
    Column("record", LargeBinary, nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

registered_keys = Table(
    "registered_keys",
    metadata,
    Column("learner_id", String(512), primary_key=True),
    Column("public_key", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

key_registrations = Table(
    "key_registrations",
    metadata,
    Column("public_key", String(64), primary_key=True),
    Column("holder_id", String(512), nullable=False),
    Column("custody", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("tx_hash", String(66), nullable=True),
    Column("block", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=True),
)
Index(
    "ix_key_registrations_state_next_attempt_at",
    key_registrations.c.state,
    key_registrations.c.next_attempt_at,
)

humanity = Table(
    "humanity",
    metadata,
    Column("commitment", String(66), primary_key=True),
    Column("user_id", String(200), nullable=False, unique=True),
    Column("public_key", String(64), nullable=False),
    Column("account", String(66), nullable=False, unique=True),
    Column("request_id", String(200), nullable=True),
    Column("state", String(16), nullable=False),
    Column("tx_hash", String(66), nullable=True),
    Column("block", BigInteger, nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("from_block", BigInteger, nullable=False),
    Column("to_block", BigInteger, nullable=True),
    Column("continuation_token", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)

# Topics this service publishes.
TOPIC_INTERACTION_ANCHORED = "chain.interaction_anchored"
TOPIC_BATCH_ANCHORED = "chain.batch_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"

# Record statuses (the values of keiko.common.v1.AnchorStatus, lowercase).
PENDING = "pending"
ANCHORED = "anchored"
FAILED = "failed"

# Batch states.
SEALED = "sealed"
SUBMITTED = "submitted"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_required(value: datetime) -> datetime:
    result = _utc(value)
    assert result is not None
    return result


# -- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A verified leaf about to be queued (see :mod:`chain.translator.service`)."""

    domain: Domain
    record_id: str
    learner_id: str
    statement_sha256: bytes
    signature: bytes
    public_key: bytes
    leaf: int
    author_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordRow:
    seq: int
    domain: Domain
    record_id: str
    learner_id: str
    author_id: str
    statement_sha256: str
    signature: str
    public_key: str
    leaf: int
    status: str
    batch_id: int | None
    leaf_index: int | None
    proof: tuple[int, ...] | None
    root: int | None
    block: int | None
    tx_hash: int | None
    failure_reason: str | None
    attempts: int
    submitted_at: datetime
    batched_at: datetime | None
    anchored_at: datetime | None

    @classmethod
    def of(cls, row: Row[Any]) -> RecordRow:
        m = row._mapping
        return cls(
            seq=m["seq"],
            domain=Domain(m["domain"]),
            record_id=m["record_id"],
            learner_id=m["learner_id"],
            author_id=m["author_id"],
            statement_sha256=m["statement_sha256"],
            signature=m["signature"],
            public_key=m["public_key"],
            leaf=int(m["leaf"], 16),
            status=m["status"],
            batch_id=None if m["batch_id"] is None else int(m["batch_id"], 16),
            leaf_index=m["leaf_index"],
            proof=None if m["proof"] is None else tuple(int(s, 16) for s in m["proof"]),
            root=None if m["root"] is None else int(m["root"], 16),
            block=m["block"],
            tx_hash=None if m["tx_hash"] is None else int(m["tx_hash"], 16),
            failure_reason=m["failure_reason"],
            attempts=m["attempts"],
            submitted_at=_utc_required(m["submitted_at"]),
            batched_at=_utc(m["batched_at"]),
            anchored_at=_utc(m["anchored_at"]),
        )


@dataclass(frozen=True, slots=True)
class BatchRow:
    seq: int
    batch_id: int
    domain: Domain
    root: int
    leaf_count: int
    state: str
    tx_hash: int | None
    block: int | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    confirmed_by: str | None
    created_at: datetime
    submitted_at: datetime | None
    anchored_at: datetime | None

    @property
    def status(self) -> str:
        """The record-level status this batch state means."""
        return {ANCHORED: ANCHORED, FAILED: FAILED}.get(self.state, PENDING)

    @classmethod
    def of(cls, row: Row[Any]) -> BatchRow:
        m = row._mapping
        return cls(
            seq=m["seq"],
            batch_id=int(m["batch_id"], 16),
            domain=Domain(m["domain"]),
            root=int(m["root"], 16),
            leaf_count=m["leaf_count"],
            state=m["state"],
            tx_hash=None if m["tx_hash"] is None else int(m["tx_hash"], 16),
            block=m["block"],
            attempts=m["attempts"],
            next_attempt_at=_utc(m["next_attempt_at"]),
            last_error=m["last_error"],
            confirmed_by=m["confirmed_by"],
            created_at=_utc_required(m["created_at"]),
            submitted_at=_utc(m["submitted_at"]),
            anchored_at=_utc(m["anchored_at"]),
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    from_block: int
    to_block: int | None
    continuation_token: str | None


@dataclass(frozen=True, slots=True)
class AnchorConfirmation:
    """Chain evidence that a batch is anchored (from an event or from ``get_batch``)."""

    batch_id: int
    root: int
    block: int
    tx_hash: int | None


@dataclass(frozen=True, slots=True)
class HumanityRow:
    commitment: int
    user_id: str
    public_key: str
    account: int
    request_id: str | None
    state: str
    tx_hash: int | None
    block: int | None
    failure_reason: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> HumanityRow:
        m = row._mapping
        return cls(
            commitment=int(m["commitment"], 16),
            user_id=m["user_id"],
            public_key=m["public_key"],
            account=int(m["account"], 16),
            request_id=m["request_id"],
            state=m["state"],
            tx_hash=None if m["tx_hash"] is None else int(m["tx_hash"], 16),
            block=m["block"],
            failure_reason=m["failure_reason"],
        )


class DuplicateRecord(Exception):
    """``(domain, record_id)`` exists; ``existing`` is the stored row."""

    def __init__(self, existing: RecordRow) -> None:
        super().__init__(f"{existing.domain.value}/{existing.record_id} exists")
        self.existing = existing


def _hex(value: int | None) -> str | None:
    return None if value is None else felt_to_hex(value)


# -- repository -----------------------------------------------------------------------------


class ChainStore:
    """All reads and writes of the ``chain`` schema. Every write is one transaction."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # -- records --------------------------------------------------------------------------

    async def insert_record(self, new: NewRecord, *, failure: str | None = None) -> RecordRow:
        """Queue a record; raises :class:`DuplicateRecord` if its key exists. With
        ``failure`` the record is stored FAILED (never batched) and ``chain.anchor_failed``
        is announced in the same transaction: a rejected record stays visible."""
        now = self.clock.now()
        try:
            async with self.db.transaction() as s:
                inserted = await s.execute(
                    insert(records)
                    .values(
                        domain=new.domain.value,
                        record_id=new.record_id,
                        learner_id=new.learner_id,
                        author_id=new.author_id,
                        statement_sha256=new.statement_sha256.hex(),
                        signature=new.signature.hex(),
                        public_key=new.public_key.hex(),
                        leaf=felt_to_hex(new.leaf),
                        status=PENDING if failure is None else FAILED,
                        failure_reason=failure,
                        attempts=0,
                        submitted_at=now,
                    )
                    .returning(*records.c)
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

    # -- sealing --------------------------------------------------------------------------

    async def seal_batch(
        self, domain: Domain, policy: BatchPolicy, *, force: bool = False
    ) -> BatchRow | None:
        """Close the next batch of ``domain`` if the policy says so (or ``force``).

        In ONE transaction: take up to ``max_leaves`` oldest unbatched records, allocate
        the batch's sequence number (the batch row's autoincrement key), build the Merkle
        tree, and write the batch and every record's batch id, index and proof. A crash
        before commit leaves the records unbatched; after commit the batch is durable.
        """
        now = self.clock.now()
        query = (
            select(records.c.seq, records.c.leaf, records.c.submitted_at)
            .where(
                records.c.domain == domain.value,
                _unbatched,
                records.c.status == PENDING,
            )
            .order_by(records.c.seq)
            .limit(policy.max_leaves)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            rows = (await s.execute(query)).all()
            if not rows:
                return None
            oldest = _utc_required(rows[0].submitted_at)
            full = len(rows) >= policy.max_leaves
            expired = now >= oldest + policy.max_wait
            if not (full or expired or force):
                return None
            result = await s.execute(
                insert(batches).values(
                    domain=domain.value,
                    leaf_count=len(rows),
                    state=SEALED,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            seq = int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
            batch_id = make_batch_id(domain, seq)
            # The tree (one Poseidon per leaf, ctypes: the GIL is released) in a worker
            # thread, so the event loop serves requests while a large batch is sealed.
            sealed = await asyncio.to_thread(
                SealedBatch.build, batch_id, domain, [int(r.leaf, 16) for r in rows]
            )
            batch_hex = felt_to_hex(batch_id)
            root_hex = felt_to_hex(sealed.root)
            await s.execute(
                update(batches)
                .where(batches.c.seq == seq)
                .values(batch_id=batch_hex, root=root_hex)
            )
            await s.execute(
                update(records)
                .where(records.c.seq == bindparam("b_seq"))
                .values(
                    batch_id=batch_hex,
                    root=root_hex,
                    leaf_index=bindparam("b_index"),
                    proof=bindparam("b_proof"),
                    batched_at=now,
                ),
                [
                    {
                        "b_seq": row.seq,
                        "b_index": proof.index,
                        "b_proof": [felt_to_hex(x) for x in proof.siblings],
                    }
                    for row, proof in zip(rows, sealed.proofs, strict=True)
                ],
            )
            batch_row = (await s.execute(select(batches).where(batches.c.seq == seq))).one()
        return BatchRow.of(batch_row)

    # -- batches --------------------------------------------------------------------------

    async def get_batch(self, batch_id: int) -> BatchRow | None:
        async with self.db.session() as s:
            row = (
                await s.execute(select(batches).where(batches.c.batch_id == felt_to_hex(batch_id)))
            ).first()
        return None if row is None else BatchRow.of(row)

    async def list_batches(self, *, state: str | None = None) -> list[BatchRow]:
        query = select(batches).where(batches.c.batch_id.is_not(None)).order_by(batches.c.seq)
        if state is not None:
            query = query.where(batches.c.state == state)
        async with self.db.session() as s:
            return [BatchRow.of(r) for r in (await s.execute(query)).all()]

    def _locked(self, condition: Any) -> Any:
        """``SELECT batches ... FOR UPDATE`` on PostgreSQL (SQLite's write lock already
        serializes): two confirmers (watcher, engine, replicas) cannot both transition."""
        query = select(batches).where(condition)
        return query.with_for_update() if self.db.dialect == "postgresql" else query

    async def claim_due_batches(self, limit: int, lease: timedelta) -> list[BatchRow]:
        """Take up to ``limit`` due batches for this engine: their ``next_attempt_at``
        moves ``lease`` ahead in the same transaction (``SKIP LOCKED`` on PostgreSQL), so
        replicas do not send the same batch at once; a crashed engine's claim expires.
        The rows come back with ``next_attempt_at`` = the claim's expiry, which is also
        the token :meth:`renew_claims` extends it by."""
        now = self.clock.now()
        query = (
            select(batches)
            .where(
                batches.c.state.in_((SEALED, SUBMITTED)),
                batches.c.batch_id.is_not(None),
                batches.c.next_attempt_at <= now,
            )
            .order_by(batches.c.seq)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            rows = [BatchRow.of(r) for r in (await s.execute(query)).all()]
            if rows:
                await s.execute(
                    update(batches)
                    .where(batches.c.seq.in_([r.seq for r in rows]))
                    .values(next_attempt_at=now + lease)
                )
        return [replace(r, next_attempt_at=now + lease) for r in rows]

    async def renew_claims(self, claims: Sequence[BatchRow], lease: timedelta) -> list[BatchRow]:
        """Extend claims this engine still holds to ``lease`` from now; returns them with
        their new expiry. A claim is held while the batch's ``next_attempt_at`` is still
        the expiry we set (compare-and-set): once the engine recorded an outcome (sent,
        failed, confirmed) or another engine took the batch after expiry, it is not."""
        until = self.clock.now() + lease
        renewed: list[BatchRow] = []
        async with self.db.transaction() as s:
            for claim in claims:
                result = await s.execute(
                    update(batches)
                    .where(
                        batches.c.seq == claim.seq,
                        batches.c.state.in_((SEALED, SUBMITTED)),
                        batches.c.next_attempt_at == claim.next_attempt_at,
                    )
                    .values(next_attempt_at=until)
                )
                if getattr(result, "rowcount", 0):
                    renewed.append(replace(claim, next_attempt_at=until))
        return renewed

    async def release(self, batch_ids: Sequence[int]) -> None:
        """Give claimed batches back (due now)."""
        if not batch_ids:
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(batches)
                .where(
                    batches.c.batch_id.in_([felt_to_hex(b) for b in batch_ids]),
                    batches.c.state.in_((SEALED, SUBMITTED)),
                )
                .values(next_attempt_at=self.clock.now())
            )

    async def next_due_at(self) -> datetime | None:
        query = select(func.min(batches.c.next_attempt_at)).where(
            batches.c.state.in_((SEALED, SUBMITTED))
        )
        async with self.db.session() as s:
            return _utc((await s.execute(query)).scalar_one_or_none())

    async def oldest_unbatched_at(self) -> datetime | None:
        query = select(func.min(records.c.submitted_at)).where(_unbatched)
        async with self.db.session() as s:
            return _utc((await s.execute(query)).scalar_one_or_none())

    async def record_failure(
        self, batch_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> int:
        """Count one failed attempt (the batch goes back to ``sealed``: it is re-checked on
        chain and re-sent at ``next_attempt_at``); returns the attempt count."""
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(batches.c.attempts, batches.c.state).where(
                        batches.c.batch_id == felt_to_hex(batch_id)
                    )
                )
            ).one()
            if row.state not in (SEALED, SUBMITTED):
                return int(row.attempts)
            attempts = int(row.attempts) + 1
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == felt_to_hex(batch_id))
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=next_attempt_at,
                    state=SEALED,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == felt_to_hex(batch_id))
                .values(attempts=attempts)
            )
        return attempts

    async def mark_submitted(
        self, batch_id: int, tx_hash: int, block: int | None, check_at: datetime
    ) -> None:
        """Our transaction succeeded; the watcher confirms it (or the engine re-checks at
        ``check_at``). Records get the transaction hash already (still PENDING)."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            # The watcher may have confirmed it already: still record when we sent it.
            await s.execute(
                update(batches)
                .where(
                    batches.c.batch_id == felt_to_hex(batch_id), batches.c.submitted_at.is_(None)
                )
                .values(submitted_at=now)
            )
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == felt_to_hex(batch_id), batches.c.state == SEALED)
                .values(
                    state=SUBMITTED,
                    attempts=batches.c.attempts + 1,
                    tx_hash=felt_to_hex(tx_hash),
                    block=block,
                    submitted_at=now,
                    next_attempt_at=check_at,
                    last_error=None,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == felt_to_hex(batch_id), records.c.status == PENDING)
                .values(tx_hash=felt_to_hex(tx_hash))
            )

    async def confirm(self, confirmations: Iterable[AnchorConfirmation], source: str) -> list[int]:
        """Mark batches anchored from chain evidence, once; returns the batch ids that
        changed. See :meth:`_confirm_in`."""
        async with self.db.transaction() as s:
            return await self._confirm_in(s, confirmations, source)

    async def _confirm_in(
        self, s: AsyncSession, confirmations: Iterable[AnchorConfirmation], source: str
    ) -> list[int]:
        """Inside ``s``: for each confirmation of a batch we know, not yet anchored and with
        the same root, set batch and records ANCHORED and enqueue ``chain.batch_anchored``
        plus one ``chain.interaction_anchored`` per record. Already anchored: nothing
        (so events are published once). Unknown batch ids (other deployments) are
        ignored; a root mismatch is left alone and reported by the caller's logs."""
        now = self.clock.now()
        changed: list[int] = []
        for c in confirmations:
            batch_hex = felt_to_hex(c.batch_id)
            row = (await s.execute(self._locked(batches.c.batch_id == batch_hex))).first()
            if row is None:
                continue
            batch = BatchRow.of(row)
            if batch.root != c.root:
                log.error(
                    "chain evidence with another root",
                    batch_id=batch_hex,
                    ours=felt_to_hex(batch.root),
                    on_chain=felt_to_hex(c.root),
                    source=source,
                )
                continue
            if batch.state == ANCHORED:
                continue
            tx_hash = c.tx_hash if c.tx_hash is not None else batch.tx_hash
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex)
                .values(
                    state=ANCHORED,
                    block=c.block,
                    tx_hash=_hex(tx_hash),
                    anchored_at=now,
                    confirmed_by=source,
                    last_error=None,
                    next_attempt_at=None,
                )
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(
                    status=ANCHORED,
                    block=c.block,
                    tx_hash=_hex(tx_hash),
                    anchored_at=now,
                    failure_reason=None,
                )
            )
            rows = (
                await s.execute(
                    select(records)
                    .where(records.c.batch_id == batch_hex)
                    .order_by(records.c.leaf_index)
                )
            ).all()
            common = {
                "batch_id": batch_hex,
                "root": felt_to_hex(batch.root),
                "block": c.block,
                "tx_hash": _hex(tx_hash),
                "domain": batch.domain.value,
            }
            announced = [
                Event(
                    TOPIC_BATCH_ANCHORED,
                    key=batch_hex,
                    payload={**common, "leaf_count": batch.leaf_count},
                    occurred_at=now,
                )
            ]
            for r in rows:
                m = r._mapping
                announced.append(
                    Event(
                        TOPIC_INTERACTION_ANCHORED,
                        key=m["learner_id"] or m["record_id"],
                        payload={
                            **common,
                            "record_id": m["record_id"],
                            "learner_id": m["learner_id"],
                            "author_id": m["author_id"],
                            "leaf": m["leaf"],
                            "leaf_index": m["leaf_index"],
                            "proof": m["proof"],
                            "leaf_count": batch.leaf_count,
                            "statement_sha256": m["statement_sha256"],
                            "signature": m["signature"],
                            "public_key": m["public_key"],
                            "status": ANCHORED,
                        },
                        occurred_at=now,
                    )
                )
            await enqueue_many(s, outbox, announced)  # one statement for the whole batch
            changed.append(c.batch_id)
        return changed

    async def mark_failed(self, batch_id: int, reason: str) -> bool:
        """Give up on a batch (``FAILED`` with ``reason``); announces ``chain.anchor_failed``
        for each record. Returns False if the batch was already final."""
        now = self.clock.now()
        batch_hex = felt_to_hex(batch_id)
        async with self.db.transaction() as s:
            row = (await s.execute(self._locked(batches.c.batch_id == batch_hex))).first()
            if row is None or row._mapping["state"] in (ANCHORED, FAILED):
                return False
            await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex)
                .values(state=FAILED, last_error=reason, next_attempt_at=None)
            )
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(status=FAILED, failure_reason=reason)
            )
            rows = (await s.execute(select(records).where(records.c.batch_id == batch_hex))).all()
            failed = []
            for r in rows:
                m = r._mapping
                failed.append(
                    Event(
                        TOPIC_ANCHOR_FAILED,
                        key=m["learner_id"] or m["record_id"],
                        payload={
                            "record_id": m["record_id"],
                            "learner_id": m["learner_id"],
                            "author_id": m["author_id"],
                            "domain": m["domain"],
                            "batch_id": batch_hex,
                            "root": m["root"],
                            "leaf": m["leaf"],
                            "leaf_index": m["leaf_index"],
                            "status": FAILED,
                            "failure_reason": reason,
                        },
                        occurred_at=now,
                    )
                )
            await enqueue_many(s, outbox, failed)
        return True

    async def retry_failed(self, batch_id: int) -> bool:
        """FAILED -> PENDING (``AnchorStatus.retry``): the same batch id and root are sent
        again (after the usual on-chain check). Returns False unless the batch was FAILED."""
        now = self.clock.now()
        batch_hex = felt_to_hex(batch_id)
        async with self.db.transaction() as s:
            result = await s.execute(
                update(batches)
                .where(batches.c.batch_id == batch_hex, batches.c.state == FAILED)
                .values(state=SEALED, next_attempt_at=now, attempts=0)
            )
            if not getattr(result, "rowcount", 0):
                return False
            await s.execute(
                update(records)
                .where(records.c.batch_id == batch_hex)
                .values(status=PENDING, failure_reason=None)
            )
        return True

    # -- watcher ----------------------------------------------------------------------------

    async def get_cursor(self, name: str, start_block: int = 0) -> Cursor:
        async with self.db.session() as s:
            row = (await s.execute(select(cursors).where(cursors.c.name == name))).first()
        if row is None:
            return Cursor(start_block, None, None)
        m = row._mapping
        return Cursor(m["from_block"], m["to_block"], m["continuation_token"])

    async def apply_events(
        self, name: str, confirmations: Sequence[AnchorConfirmation], cursor: Cursor
    ) -> list[int]:
        """Confirm batches from one page of events and move the cursor, atomically: a
        crash replays the page, and confirming is idempotent."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            changed = await self._confirm_in(s, confirmations, "event")
            values = {
                "from_block": cursor.from_block,
                "to_block": cursor.to_block,
                "continuation_token": cursor.continuation_token,
                "updated_at": now,
            }
            result = await s.execute(update(cursors).where(cursors.c.name == name).values(values))
            if not getattr(result, "rowcount", 0):
                await s.execute(insert(cursors).values(name=name, **values))
        return changed

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

    # -- humanity ---------------------------------------------------------------------------

    async def humanity_by_commitment(self, commitment: int) -> HumanityRow | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(humanity).where(humanity.c.commitment == felt_to_hex(commitment))
                )
            ).first()
        return None if row is None else HumanityRow.of(row)

    async def humanity_by_user(self, user_id: str) -> HumanityRow | None:
        async with self.db.session() as s:
            row = (await s.execute(select(humanity).where(humanity.c.user_id == user_id))).first()
        return None if row is None else HumanityRow.of(row)

    async def used_accounts(self) -> set[int]:
        async with self.db.session() as s:
            values = (await s.execute(select(humanity.c.account))).scalars().all()
        return {int(v, 16) for v in values}

    async def insert_humanity(
        self,
        commitment: int,
        user_id: str,
        public_key: bytes,
        account: int,
        request_id: str | None,
    ) -> HumanityRow:
        """Reserve ``account`` for ``user_id``'s registration (state ``pending``).
        Raises ``IntegrityError`` (unique violation) if commitment, user or account is
        taken."""
        async with self.db.transaction() as s:
            await s.execute(
                insert(humanity).values(
                    commitment=felt_to_hex(commitment),
                    user_id=user_id,
                    public_key=public_key.hex(),
                    account=felt_to_hex(account),
                    request_id=request_id,
                    state=PENDING,
                    created_at=self.clock.now(),
                )
            )
        row = await self.humanity_by_commitment(commitment)
        assert row is not None
        return row

    async def delete_humanity(self, commitment: int) -> None:
        """Forget a FAILED registration (its account is reused by the next attempt)."""
        async with self.db.transaction() as s:
            await s.execute(
                delete(humanity).where(
                    humanity.c.commitment == felt_to_hex(commitment), humanity.c.state == FAILED
                )
            )

    async def finish_humanity(
        self,
        commitment: int,
        *,
        state: str,
        tx_hash: int | None = None,
        block: int | None = None,
        reason: str | None = None,
    ) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(humanity)
                .where(humanity.c.commitment == felt_to_hex(commitment))
                .values(state=state, tx_hash=_hex(tx_hash), block=block, failure_reason=reason)
            )


# Tables defined in modules of their own, on this schema's metadata.
from chain.translator import onchain_tables  # noqa: E402,F401
