"""Learning persistence: tables in the `learning` schema and the repository over them.

* `statements`: one row per stored xAPI statement: the exact stored JSON text (what is
  canonicalized, signed and anchored), its RFC 8785 SHA-256, and the typed columns queries
  filter on. `learner_id` is the Keiko user the actor resolves to (NULL for external
  actors); `recorded_by` is the user whose credentials stored it (the authority).
  Interactions are statements with `interaction_type` set and their input kept in
  `interaction` (JSON) so they can be shown back without parsing the statement.
* `statement_activities`: activity index (object activity, and context/substatement
  activities flagged `related`) for the xAPI `activity` / `related_activities` filters.
* the hierarchy: `courses`, `classes`, `tutorial_sessions` + `tutorial_participants`,
  `study_sessions`.
* `lrs_clients` (Basic auth secrets stored as SHA-256 only), `webhook_sources` (HMAC
  secrets kept as given, since HMAC needs them; Basic auth passwords as SHA-256 only),
  `webhook_deliveries` (a delivery's body hash -> the statement ids it produced).
* `request_keys`: client idempotency keys -> the result of the first call.
* `prepared_interactions`: statements built by PrepareInteraction for device signing.
* `outbox`: events written in the transaction of the change.
* `processed_events`: event ids the learning consumers handled (exactly-once in effect).

Pagination is keyset on (stored, id): a page token names the last row returned, so rows
inserted between two pages never shift the later pages (no duplicates, no gaps).
SQLite returns naive datetimes; every value written is UTC and is read back as UTC.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON as SAJSON
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.kit.db import NAMING_CONVENTION
from services.kit.errors import ValidationError
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table

SCHEMA = "learning"

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

ID = 128  # Keiko ids: [A-Za-z0-9._~-]{1,128}
IRI = 2048


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


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
    _ts("timestamp"),
    _ts("stored"),
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
    _ts("anchored_at", nullable=True),
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

courses = Table(
    "courses",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("instructor_id", String(ID), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Index(None, "instructor_id", "created_at"),
)

classes = Table(
    "classes",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("course_id", String(ID), ForeignKey("courses.id"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(ID), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Index(None, "course_id", "created_at"),
)

tutorial_sessions = Table(
    "tutorial_sessions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("class_id", String(ID), ForeignKey("classes.id"), nullable=True),
    Column("tutor_id", String(ID), nullable=False),
    Column("tutor_kind", String(8), nullable=False),
    Column("topic", String(200), nullable=False, default=""),
    Column("created_by", String(ID), nullable=False),
    _ts("scheduled_at", nullable=True),
    _ts("started_at", nullable=True),
    _ts("ended_at", nullable=True),
    _ts("created_at"),
    Index(None, "class_id", "created_at"),
    Index(None, "tutor_id", "created_at"),
)

tutorial_participants = Table(
    "tutorial_participants",
    metadata,
    Column(
        "session_id",
        String(ID),
        ForeignKey("tutorial_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(ID), primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "user_id"),
)

study_sessions = Table(
    "study_sessions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    Column("class_id", String(ID), ForeignKey("classes.id"), nullable=True),
    Column("topic", String(200), nullable=False, default=""),
    _ts("started_at"),
    _ts("ended_at", nullable=True),
    Index(None, "learner_id", "started_at"),
)

lrs_clients = Table(
    "lrs_clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key", String(64), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    Index(None, "owner_id", "created_at"),
)

webhook_sources = Table(
    "webhook_sources",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("owner_id", String(ID), nullable=False),
    Column("course_id", String(ID), nullable=True),
    # HMAC kinds (Moodle, Canvas): the shared secret. Basic kinds: NULL.
    Column("hmac_secret", String(256), nullable=True),
    # Basic kinds (Learning Locker, SCORM Cloud): SHA-256 hex of the password.
    Column("password_hash", String(64), nullable=True),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    Index(None, "owner_id", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("source_id", String(36), primary_key=True),
    Column("body_sha256", String(64), primary_key=True),
    Column("statement_ids", SAJSON, nullable=False),
    Column("skipped", Integer, nullable=False, default=0),
    _ts("received_at"),
)

request_keys = Table(
    "request_keys",
    metadata,
    Column("caller_id", String(ID), primary_key=True),
    Column("operation", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("result", SAJSON, nullable=False),
    _ts("created_at"),
)

prepared_interactions = Table(
    "prepared_interactions",
    metadata,
    Column("statement_id", String(36), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    Column("prepared_by", String(ID), nullable=False),
    Column("statement_json", Text, nullable=False),
    _ts("created_at"),
)

outbox = outbox_table(metadata)
# Markers of events the learning consumers handled (services.kit.events.dedupe).
processed_events = processed_events_table(metadata)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_required(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


def sha256_hex(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


# -- page tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: (stored, id), bound to the query's filters."""

    stored: datetime
    id: str


def encode_cursor(cursor: Cursor, scope: str) -> str:
    body = json.dumps(
        {"s": cursor.stored.astimezone(UTC).isoformat(), "i": cursor.id, "q": scope[:16]},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(token: str, scope: str, field: str = "page_token") -> Cursor | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        stored = datetime.fromisoformat(data["s"])
        ident = data["i"]
        if not isinstance(ident, str) or stored.tzinfo is None:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise ValidationError(field, "is not a page token this service issued") from None
    if data.get("q") != scope[:16]:
        raise ValidationError(field, "was issued for a query with other filters")
    return Cursor(stored.astimezone(UTC), ident)


def query_scope(*parts: object) -> str:
    return sha256_hex(json.dumps([str(p) for p in parts]))


def keyset(
    stored_col: ColumnElement[Any], id_col: ColumnElement[Any], cursor: Cursor, ascending: bool
) -> ColumnElement[bool]:
    if ascending:
        return or_(
            stored_col > cursor.stored, and_(stored_col == cursor.stored, id_col > cursor.id)
        )
    return or_(stored_col < cursor.stored, and_(stored_col == cursor.stored, id_col < cursor.id))


def created_keyset(
    created_col: ColumnElement[Any], id_col: ColumnElement[Any], cursor: Cursor | None
) -> ColumnElement[bool] | None:
    if cursor is None:
        return None
    return keyset(created_col, id_col, cursor, ascending=True)


# -- statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementRow:
    id: str
    actor_key: str | None
    learner_id: str | None
    recorded_by: str
    lrs_client_id: str | None
    webhook_source_id: str | None
    verb_id: str
    object_type: str
    object_id: str | None
    registration: str | None
    timestamp: datetime
    stored: datetime
    version: str
    voided: bool
    voids_statement_id: str | None
    statement_json: str
    canonical_hash: str
    interaction_type: str | None
    interaction: dict[str, Any] | None
    course_id: str | None
    class_id: str | None
    tutorial_session_id: str | None
    study_session_id: str | None
    device_signature_hex: str | None
    device_public_key_hex: str | None
    anchor_status: str | None = None
    anchor_batch_id: str | None = None
    anchor_root: str | None = None
    anchor_leaf_index: int | None = None
    anchor_block: int | None = None
    anchor_tx_hash: str | None = None
    anchor_failure: str | None = None
    anchored_at: datetime | None = None

    @staticmethod
    def of(row: Row[Any]) -> StatementRow:
        m = dict(row._mapping)
        m["timestamp"] = utc_required(m["timestamp"])
        m["stored"] = utc_required(m["stored"])
        m["anchored_at"] = utc(m["anchored_at"])
        m["voided"] = bool(m["voided"])
        return StatementRow(**m)

    @property
    def statement(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.statement_json)
        return value

    def values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class StatementFilter:
    learner_id: str = ""
    actor_key: str = ""
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

    def scope(self) -> str:
        return query_scope(*(getattr(self, f) for f in self.__dataclass_fields__))


class LearningRepository:
    """Queries and writes of the learning schema, within the caller's session/transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # -- statements -----------------------------------------------------------------------

    async def get_statement(self, statement_id: str) -> StatementRow | None:
        row = (
            await self.s.execute(select(statements).where(statements.c.id == statement_id))
        ).first()
        return StatementRow.of(row) if row is not None else None

    async def get_statements(self, ids: Sequence[str]) -> dict[str, StatementRow]:
        if not ids:
            return {}
        rows = (await self.s.execute(select(statements).where(statements.c.id.in_(ids)))).all()
        found = [StatementRow.of(r) for r in rows]
        return {r.id: r for r in found}

    async def insert_statement(
        self, row: StatementRow, activities: Sequence[tuple[str, bool]]
    ) -> None:
        await self.s.execute(insert(statements).values(**row.values()))
        seen: dict[str, bool] = {}
        for activity_id, related in activities:
            # The object wins over a related mention of the same activity.
            seen[activity_id] = seen.get(activity_id, True) and related
        if seen:
            await self.s.execute(
                insert(statement_activities),
                [{"statement_id": row.id, "activity_id": a, "related": r} for a, r in seen.items()],
            )

    async def set_anchor(self, statement_id: str, values: dict[str, Any]) -> bool:
        """Record an anchoring outcome; an anchored statement stays anchored."""
        t = statements
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
    ) -> tuple[list[StatementRow], Cursor | None]:
        """One page (at most `limit` rows) and the cursor of the next page, if any."""
        t = statements
        conditions: list[ColumnElement[bool]] = []
        if f.learner_id:
            conditions.append(t.c.learner_id == f.learner_id)
        if f.actor_key:
            conditions.append(t.c.actor_key == f.actor_key)
        if f.verb_id:
            conditions.append(t.c.verb_id == f.verb_id)
        if f.registration:
            conditions.append(t.c.registration == f.registration)
        if f.since is not None:
            conditions.append(t.c.stored >= f.since)
        if f.until is not None:
            conditions.append(t.c.stored <= f.until)
        if not f.include_voided:
            conditions.append(t.c.voided.is_(False))
        if f.visible_to:
            conditions.append(or_(t.c.learner_id == f.visible_to, t.c.recorded_by == f.visible_to))
        if f.activity_id:
            a = statement_activities
            match = select(a.c.statement_id).where(a.c.activity_id == f.activity_id)
            if not f.related_activities:
                match = match.where(a.c.related.is_(False))
            conditions.append(t.c.id.in_(match))
        if f.interactions_only:
            conditions.append(t.c.interaction_type.is_not(None))
        if f.interaction_types:
            conditions.append(t.c.interaction_type.in_(f.interaction_types))
        for column, value in (
            (t.c.course_id, f.course_id),
            (t.c.class_id, f.class_id),
            (t.c.tutorial_session_id, f.tutorial_session_id),
            (t.c.study_session_id, f.study_session_id),
        ):
            if value:
                conditions.append(column == value)
        if cursor is not None:
            conditions.append(keyset(t.c.stored, t.c.id, cursor, f.ascending))
        order = (
            (t.c.stored.asc(), t.c.id.asc()) if f.ascending else (t.c.stored.desc(), t.c.id.desc())
        )
        query = select(t).where(and_(true_(), *conditions)).order_by(*order).limit(limit + 1)
        rows = [StatementRow.of(r) for r in (await self.s.execute(query)).all()]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, Cursor(page[-1].stored, page[-1].id)

    async def count_statements(self, column: str, value: str) -> int:
        t = statements
        query = (
            select(func.count())
            .select_from(t)
            .where(t.c[column] == value, t.c.voided.is_(False), t.c.interaction_type.is_not(None))
        )
        return int((await self.s.execute(query)).scalar_one())

    async def count_statements_by(self, column: str, values: Sequence[str]) -> dict[str, int]:
        if not values:
            return {}
        t = statements
        col = t.c[column]
        query = (
            select(col, func.count())
            .where(col.in_(values), t.c.voided.is_(False), t.c.interaction_type.is_not(None))
            .group_by(col)
        )
        return {str(k): int(n) for k, n in (await self.s.execute(query)).all()}

    # -- idempotency keys -----------------------------------------------------------------

    async def get_request_key(self, caller_id: str, operation: str, request_id: str) -> Any:
        t = request_keys
        row = (
            await self.s.execute(
                select(t.c.result).where(
                    t.c.caller_id == caller_id,
                    t.c.operation == operation,
                    t.c.request_id == request_id,
                )
            )
        ).first()
        return row[0] if row is not None else None

    async def put_request_key(
        self, caller_id: str, operation: str, request_id: str, result: Any, now: datetime
    ) -> None:
        await self.s.execute(
            insert(request_keys).values(
                caller_id=caller_id,
                operation=operation,
                request_id=request_id,
                result=result,
                created_at=now,
            )
        )

    # -- generic rows ---------------------------------------------------------------------

    async def get_row(self, table: Table, key: str) -> dict[str, Any] | None:
        row = (await self.s.execute(select(table).where(table.c.id == key))).first()
        return _mapping(row) if row is not None else None

    async def get_rows(self, table: Table, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        rows = (await self.s.execute(select(table).where(table.c.id.in_(keys)))).all()
        return {r.id: _mapping(r) for r in rows}

    async def insert_row(self, table: Table, values: dict[str, Any]) -> None:
        await self.s.execute(insert(table).values(**values))

    async def update_row(self, table: Table, key: str, values: dict[str, Any]) -> None:
        await self.s.execute(update(table).where(table.c.id == key).values(**values))

    async def page_rows(
        self,
        table: Table,
        order_col: str,
        conditions: Sequence[ColumnElement[bool]],
        limit: int,
        cursor: Cursor | None,
        *,
        descending: bool = False,
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """Rows of `table` in (order_col, id) order, keyset-paginated."""
        col = table.c[order_col]
        where = list(conditions)
        if cursor is not None:
            where.append(keyset(col, table.c.id, cursor, ascending=not descending))
        order = (col.desc(), table.c.id.desc()) if descending else (col.asc(), table.c.id.asc())
        query = select(table).where(and_(true_(), *where)).order_by(*order).limit(limit + 1)
        rows = [_mapping(r) for r in (await self.s.execute(query)).all()]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, Cursor(utc_required(page[-1][order_col]), page[-1]["id"])

    async def class_ids_of_courses(self, course_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {c: [] for c in course_ids}
        if not course_ids:
            return out
        query = (
            select(classes.c.course_id, classes.c.id)
            .where(classes.c.course_id.in_(course_ids))
            .order_by(classes.c.created_at, classes.c.id)
        )
        for course_id, class_id in (await self.s.execute(query)).all():
            out[course_id].append(class_id)
        return out

    async def session_ids_of_classes(self, class_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {c: [] for c in class_ids}
        if not class_ids:
            return out
        t = tutorial_sessions
        query = (
            select(t.c.class_id, t.c.id)
            .where(t.c.class_id.in_(class_ids))
            .order_by(t.c.created_at, t.c.id)
        )
        for class_id, session_id in (await self.s.execute(query)).all():
            out[class_id].append(session_id)
        return out

    async def participants(self, session_ids: Sequence[str]) -> dict[str, list[str]]:
        """Students of each tutorial session, in the order given at creation."""
        out: dict[str, list[str]] = {s: [] for s in session_ids}
        if not session_ids:
            return out
        p = tutorial_participants
        query = (
            select(p.c.session_id, p.c.user_id)
            .where(p.c.session_id.in_(session_ids), p.c.position > 0)
            .order_by(p.c.session_id, p.c.position)
        )
        for session_id, user_id in (await self.s.execute(query)).all():
            out[session_id].append(user_id)
        return out

    async def tutor_of_student(self, tutor_id: str, student_id: str) -> bool:
        """True when `tutor_id` tutors a session that `student_id` is a student of."""
        t, p = tutorial_sessions, tutorial_participants
        query = (
            select(t.c.id)
            .join(p, p.c.session_id == t.c.id)
            .where(t.c.tutor_id == tutor_id, p.c.user_id == student_id, p.c.position > 0)
            .limit(1)
        )
        return (await self.s.execute(query)).first() is not None

    # -- webhook deliveries ---------------------------------------------------------------

    async def get_delivery(self, source_id: str, body_sha256: str) -> dict[str, Any] | None:
        t = webhook_deliveries
        row = (
            await self.s.execute(
                select(t).where(t.c.source_id == source_id, t.c.body_sha256 == body_sha256)
            )
        ).first()
        return _mapping(row) if row is not None else None

    async def get_lrs_client_by_key(self, key: str) -> dict[str, Any] | None:
        row = (await self.s.execute(select(lrs_clients).where(lrs_clients.c.key == key))).first()
        return _mapping(row) if row is not None else None


def _mapping(row: Row[Any]) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = utc(value)
    return out


def true_() -> ColumnElement[bool]:
    from sqlalchemy import true

    return true()


__all__ = [
    "SCHEMA",
    "Cursor",
    "LearningRepository",
    "StatementFilter",
    "StatementRow",
    "classes",
    "courses",
    "decode_cursor",
    "encode_cursor",
    "lrs_clients",
    "metadata",
    "outbox",
    "prepared_interactions",
    "processed_events",
    "request_keys",
    "statement_activities",
    "statements",
    "study_sessions",
    "tutorial_participants",
    "tutorial_sessions",
    "webhook_deliveries",
    "webhook_sources",
]
