"""The ``chain`` schema of the translator: tables, statuses, row types, and the base of
the repository (:class:`chain.translator.storage.ChainStore` documents the whole)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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
)
from sqlalchemy.engine import Row

from chain.translator.batching import Domain
from chain.translator.felts import felt_to_hex
from services.kit.clock import Clock
from services.kit.db import NAMING_CONVENTION, Database
from services.kit.events.outbox import outbox_table

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
    # How the leaf was computed (chain.translator.leaves, leaf_data.RECORD_LEAF_ENCODING).
    Column("leaf_encoding", String(32), nullable=False, server_default="keiko.leaf.v1"),
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
    # keiko.leaf.v1 / keiko.leaf.v2 (signed statements), keiko.record.v1 (unsigned)
    leaf_encoding: str
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
    leaf_encoding: str
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
            leaf_encoding=m["leaf_encoding"],
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
    # Set by ``claim_due_batches`` only: this claim is the batch's first, so no engine
    # (this one or a replica) can have sent it yet.
    first_claim: bool = False

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


class StoreBase:
    """What every part of the repository holds: the database and the clock."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
