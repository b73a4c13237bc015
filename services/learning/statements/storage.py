"""Statement tables and their repository.

* `statements`: one row per stored xAPI statement: the exact stored JSON text, its RFC 8785
  SHA-256, and the typed columns queries filter on. `learner_id` is the Keiko user the
  actor resolves to (NULL for external actors); `recorded_by` is the user whose
  credentials stored it (the authority). Interactions are statements with
  `interaction_type` set and their input kept in `interaction` (JSON).
* `statement_activities`: activity index (object activity, and context/substatement
  activities flagged `related`) for the xAPI `activity` / `related_activities` filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.learning.common.storage import (
    ID,
    IRI,
    Cursor,
    insert_ignore,
    keyset,
    metadata,
    query_scope,
    ts_column,
    utc,
    utc_required,
)
from services.learning.statements.domain import (
    AnchorOutcome,
    InteractionDetails,
    StatementRecord,
)

statements = Table(
    "statements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("actor_key", String(IRI), nullable=True),
    Column("learner_id", String(ID), nullable=True),
    Column("recorded_by", String(ID), nullable=False),
    Column("lrs_client_id", String(36), nullable=True),
    Column("webhook_source_id", String(36), nullable=True),
    Column("verb_id", String(IRI), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(IRI), nullable=True),
    Column("registration", String(36), nullable=True),
    ts_column("timestamp"),
    ts_column("stored"),
    Column("version", String(16), nullable=False),
    Column("voided", Boolean, nullable=False, default=False),
    # Set on a voiding statement: the statement it voids.
    Column("voids_statement_id", String(36), nullable=True),
    Column("statement_json", Text, nullable=False),
    Column("canonical_hash", String(64), nullable=False),
    # Interactions (RecordInteraction) only.
    Column("interaction_type", String(16), nullable=True),
    Column("interaction", SAJSON, nullable=True),
    Column("course_id", String(ID), nullable=True),
    Column("class_id", String(ID), nullable=True),
    Column("tutorial_session_id", String(ID), nullable=True),
    Column("study_session_id", String(ID), nullable=True),
    Column("device_signature_hex", String(128), nullable=True),
    Column("device_public_key_hex", String(64), nullable=True),
    # Anchoring on Keikochain, from the translator's events (NULL status: pending).
    Column("anchor_status", String(16), nullable=True),
    Column("anchor_batch_id", String(80), nullable=True),
    Column("anchor_root", String(80), nullable=True),
    Column("anchor_leaf_index", Integer, nullable=True),
    Column("anchor_block", BigInteger, nullable=True),
    Column("anchor_tx_hash", String(80), nullable=True),
    Column("anchor_failure", Text, nullable=True),
    # The signature the translator anchored (custodial or the author's key), so an
    # interaction shows what verifies it once anchored.
    Column("anchor_signature_hex", String(128), nullable=True),
    Column("anchor_public_key_hex", String(64), nullable=True),
    ts_column("anchored_at", nullable=True),
    Index(None, "learner_id", "stored", "id"),
    Index(None, "recorded_by", "stored", "id"),
    Index(None, "stored", "id"),
    Index(None, "verb_id"),
    Index(None, "registration"),
    Index(None, "actor_key"),
    Index(None, "voids_statement_id"),
    Index(None, "class_id"),
    Index(None, "tutorial_session_id"),
    Index(None, "study_session_id"),
    Index(None, "object_id"),
)

statement_activities = Table(
    "statement_activities",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("activity_id", String(IRI), primary_key=True),
    # False: the statement's object; True: context activities, substatement activities.
    Column("related", Boolean, nullable=False),
    Index(None, "activity_id"),
)

statement_agents = Table(
    "statement_agents",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agent_key", String(IRI), primary_key=True),
    # False: the actor or an Agent/Group object (or a member of such a Group); True: the
    # authority, instructor, team, context agents/groups, anything in a SubStatement.
    Column("related", Boolean, nullable=False),
    Index(None, "agent_key"),
)


# Attachment data, content-addressed by the SHA-2 hex digest its statements declare.
attachments = Table(
    "attachments",
    metadata,
    Column("sha2", String(128), primary_key=True),
    Column("content_type", String(255), nullable=False),
    Column("length", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    ts_column("created_at"),
)

statement_attachments = Table(
    "statement_attachments",
    metadata,
    Column(
        "statement_id",
        String(36),
        ForeignKey("statements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("sha2", String(128), ForeignKey("attachments.sha2"), primary_key=True),
    Index(None, "sha2"),
)


@dataclass(frozen=True)
class StoredAttachment:
    sha2: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class StatementFilter:
    learner_id: str = ""
    # An agent key (`agent_key`): statements whose actor or object is that agent (or a
    # Group with it as member); with `related_agents`, anywhere in the statement.
    agent_key: str = ""
    related_agents: bool = False
    verb_id: str = ""
    activity_id: str = ""
    related_activities: bool = False
    registration: str = ""
    since: datetime | None = None
    until: datetime | None = None
    include_voided: bool = False
    ascending: bool = False
    # Visibility: when set, only rows whose learner or recorder is this user.
    visible_to: str = ""
    # Interactions only, with hierarchy filters.
    interactions_only: bool = False
    interaction_types: tuple[str, ...] = ()
    course_id: str = ""
    class_id: str = ""
    tutorial_session_id: str = ""
    study_session_id: str = ""
    # xAPI 2.1.3.s3: a statement whose object is a StatementRef to a matching statement
    # matches the non-time filters too (recursively), voiding statements included.
    follow_statement_refs: bool = False
    # Read scope (issue 9): when set, only interactions recorded in these tutorial
    # sessions (a tutor reading a student's record).
    within_sessions: tuple[str, ...] | None = None

    def scope(self) -> str:
        return query_scope(*(getattr(self, f) for f in self.__dataclass_fields__))


def statement_record(row: Row[Any]) -> StatementRecord:
    m = dict(row._mapping)
    m["timestamp"] = utc_required(m["timestamp"])
    m["stored"] = utc_required(m["stored"])
    m["anchored_at"] = utc(m["anchored_at"])
    m["voided"] = bool(m["voided"])
    m["interaction"] = InteractionDetails.from_json(m["interaction"])
    return StatementRecord(**m)


def statement_values(record: StatementRecord) -> dict[str, Any]:
    values = {k: getattr(record, k) for k in record.__dataclass_fields__}
    values["interaction"] = record.interaction.to_json() if record.interaction else None
    return values


def _matching(f: StatementFilter) -> list[ColumnElement[bool]]:
    """The filters that are not time or sequence based (2.1.3.s3)."""
    t = statements
    conditions: list[ColumnElement[bool]] = []
    if f.learner_id:
        conditions.append(t.c.learner_id == f.learner_id)
    if f.agent_key:
        a = statement_agents
        match = select(a.c.statement_id).where(a.c.agent_key == f.agent_key)
        if not f.related_agents:
            match = match.where(a.c.related.is_(False))
        conditions.append(t.c.id.in_(match))
    if f.verb_id:
        conditions.append(t.c.verb_id == f.verb_id)
    if f.registration:
        conditions.append(t.c.registration == f.registration)
    if f.activity_id:
        a2 = statement_activities
        found = select(a2.c.statement_id).where(a2.c.activity_id == f.activity_id)
        if not f.related_activities:
            found = found.where(a2.c.related.is_(False))
        conditions.append(t.c.id.in_(found))
    if f.interactions_only:
        conditions.append(t.c.interaction_type.is_not(None))
    if f.interaction_types:
        conditions.append(t.c.interaction_type.in_(f.interaction_types))
    if f.within_sessions is not None:
        conditions.append(t.c.tutorial_session_id.in_(f.within_sessions))
    for column, value in (
        (t.c.course_id, f.course_id),
        (t.c.class_id, f.class_id),
        (t.c.tutorial_session_id, f.tutorial_session_id),
        (t.c.study_session_id, f.study_session_id),
    ):
        if value:
            conditions.append(column == value)
    return conditions


class StatementRepository:
    """Queries and writes of the statement tables, within the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_statement(self, statement_id: str) -> StatementRecord | None:
        row = (
            await self.s.execute(select(statements).where(statements.c.id == statement_id))
        ).first()
        return statement_record(row) if row is not None else None

    async def get_statements(self, ids: Sequence[str]) -> dict[str, StatementRecord]:
        if not ids:
            return {}
        rows = (await self.s.execute(select(statements).where(statements.c.id.in_(ids)))).all()
        found = [statement_record(r) for r in rows]
        return {r.id: r for r in found}

    async def insert_statement(
        self,
        row: StatementRecord,
        activities: Sequence[tuple[str, bool]],
        agents: Sequence[tuple[str, bool]] = (),
    ) -> None:
        await self.s.execute(insert(statements).values(**statement_values(row)))
        if agents:
            await self.s.execute(
                insert(statement_agents),
                [{"statement_id": row.id, "agent_key": k, "related": r} for k, r in agents],
            )
        seen: dict[str, bool] = {}
        for activity_id, related in activities:
            # The object wins over a related mention of the same activity.
            seen[activity_id] = seen.get(activity_id, True) and related
        if seen:
            await self.s.execute(
                insert(statement_activities),
                [{"statement_id": row.id, "activity_id": a, "related": r} for a, r in seen.items()],
            )

    async def set_anchor(self, statement_id: str, outcome: AnchorOutcome) -> bool:
        """Record an anchoring outcome; an anchored statement stays anchored."""
        t = statements
        values = {f"anchor_{k}": v for k, v in asdict(outcome).items() if k != "anchored_at"}
        values["anchored_at"] = outcome.anchored_at
        result = await self.s.execute(
            update(t)
            .where(
                t.c.id == statement_id,
                or_(t.c.anchor_status.is_(None), t.c.anchor_status != "anchored"),
            )
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def mark_voided(self, statement_id: str) -> None:
        await self.s.execute(
            update(statements).where(statements.c.id == statement_id).values(voided=True)
        )

    async def query_statements(
        self, f: StatementFilter, limit: int, cursor: Cursor | None
    ) -> tuple[list[StatementRecord], Cursor | None]:
        """One page (at most `limit` rows) and the cursor of the next page, if any."""
        t = statements
        matching = _matching(f)
        conditions: list[ColumnElement[bool]] = []
        if f.follow_statement_refs and matching:
            # Statements matching the filters, then (recursively) those whose object is a
            # StatementRef to one of them. Voided targets count: 2.1.4.s1.b2.
            seed = select(t.c.id.label("id")).where(and_(true(), *matching))
            matched = seed.cte("matched", recursive=True)
            referring = t.alias("referring")
            matched = matched.union(
                select(referring.c.id).where(
                    referring.c.object_type == "StatementRef",
                    referring.c.object_id == matched.c.id,
                )
            )
            conditions.append(t.c.id.in_(select(matched.c.id)))
        else:
            conditions.extend(matching)
        if f.since is not None:
            conditions.append(t.c.stored >= f.since)
        if f.until is not None:
            conditions.append(t.c.stored <= f.until)
        if not f.include_voided:
            conditions.append(t.c.voided.is_(False))
        if f.visible_to:
            conditions.append(or_(t.c.learner_id == f.visible_to, t.c.recorded_by == f.visible_to))
        if cursor is not None:
            conditions.append(keyset(t.c.stored, t.c.id, cursor, f.ascending))
        order = (
            (t.c.stored.asc(), t.c.id.asc()) if f.ascending else (t.c.stored.desc(), t.c.id.desc())
        )
        query = select(t).where(and_(true(), *conditions)).order_by(*order).limit(limit + 1)
        rows = [statement_record(r) for r in (await self.s.execute(query)).all()]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, Cursor(page[-1].stored, page[-1].id)

    async def store_attachment(
        self, sha2: str, content_type: str, content: bytes, now: datetime
    ) -> None:
        """Keep attachment data once per digest (a second copy of the same data is a no-op)."""
        await insert_ignore(
            self.s,
            attachments,
            {
                "sha2": sha2,
                "content_type": content_type[:255],
                "length": len(content),
                "content": content,
                "created_at": now,
            },
        )

    async def link_attachments(self, statement_id: str, sha2s: Sequence[str]) -> None:
        for sha2 in dict.fromkeys(sha2s):
            await insert_ignore(
                self.s, statement_attachments, {"statement_id": statement_id, "sha2": sha2}
            )

    async def attachments_visible(
        self, sha2s: Sequence[str], visible_to: str
    ) -> list[StoredAttachment]:
        """Attachment data of the digests that a statement `visible_to` may read uses
        (every one when `visible_to` is empty: an admin)."""
        if not sha2s:
            return []
        a, sa, t = attachments, statement_attachments, statements
        users = select(sa.c.sha2).join(t, t.c.id == sa.c.statement_id).where(sa.c.sha2.in_(sha2s))
        if visible_to:
            users = users.where(or_(t.c.learner_id == visible_to, t.c.recorded_by == visible_to))
        query = select(a.c.sha2, a.c.content_type, a.c.content).where(a.c.sha2.in_(users))
        rows = (await self.s.execute(query)).all()
        return [StoredAttachment(r.sha2, r.content_type, bytes(r.content)) for r in rows]

    async def voiding_statements_of(self, statement_id: str) -> list[StatementRecord]:
        """Voiding statements stored before the statement they void (2.3.2: a voiding
        statement is accepted even when its target is not stored yet)."""
        t = statements
        rows = (await self.s.execute(select(t).where(t.c.voids_statement_id == statement_id))).all()
        return [statement_record(r) for r in rows]

    async def count_interactions_by(
        self, column: str, values: Sequence[str], *, learner_id: str = ""
    ) -> dict[str, int]:
        """Interactions (not voided) per value of a hierarchy column (class, session), of
        one learner when `learner_id` is given."""
        if not values:
            return {}
        t = statements
        col = t.c[column]
        query = select(col, func.count()).where(
            col.in_(values), t.c.voided.is_(False), t.c.interaction_type.is_not(None)
        )
        if learner_id:
            query = query.where(t.c.learner_id == learner_id)
        query = query.group_by(col)
        return {str(k): int(n) for k, n in (await self.s.execute(query)).all()}
