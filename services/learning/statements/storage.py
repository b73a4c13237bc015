"""The statements' repository: queries and writes of the statement tables
(`services.learning.statements.tables`), and the xAPI page queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from services.learning.common.storage import (
    Cursor,
    insert_ignore_many,
    keyset,
    query_scope,
    utc,
    utc_required,
)
from services.learning.statements.domain import (
    AnchorOutcome,
    InteractionDetails,
    StatementRecord,
)
from services.learning.statements.tables import (
    attachments,
    statement_activities,
    statement_agents,
    statement_attachments,
    statements,
)


@dataclass(frozen=True)
class StoredAttachment:
    sha2: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class NewStatement:
    """A statement to insert, with its rows of the activity and agent indexes
    ((id or key, related) pairs; an activity listed twice keeps its object mention)."""

    record: StatementRecord
    activities: Sequence[tuple[str, bool]] = ()
    agents: Sequence[tuple[str, bool]] = ()


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


@dataclass(frozen=True)
class TextPage:
    """A page of statements as the xAPI resource serves them: their stored JSON texts in
    page order and the newest `stored` among them (None when the page is empty)."""

    texts: list[str]
    newest_stored: datetime | None
    next_page_token: str = ""


def statement_record(row: Row[Any] | Mapping[str, Any]) -> StatementRecord:
    m = dict(row._mapping) if isinstance(row, Row) else dict(row)
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


def index_rows(
    batch: Sequence[NewStatement],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of the agent and activity indexes of `batch`."""
    agents = [
        {"statement_id": n.record.id, "agent_key": k, "related": r}
        for n in batch
        for k, r in n.agents
    ]
    activities: list[dict[str, Any]] = []
    for n in batch:
        seen: dict[str, bool] = {}
        for activity_id, related in n.activities:
            # The object wins over a related mention of the same activity.
            seen[activity_id] = seen.get(activity_id, True) and related
        activities.extend(
            {"statement_id": n.record.id, "activity_id": a, "related": r} for a, r in seen.items()
        )
    return agents, activities


def looked_up(
    rows: Sequence[StatementRecord], wanted: Sequence[str]
) -> tuple[dict[str, StatementRecord], dict[str, list[StatementRecord]]]:
    """`StatementRepository.lookup`'s answer from the rows it found."""
    ids = set(wanted)
    by_id = {r.id: r for r in rows if r.id in ids}
    voiders: dict[str, list[StatementRecord]] = {}
    for r in rows:
        if r.voids_statement_id is not None:
            voiders.setdefault(r.voids_statement_id, []).append(r)
    return by_id, voiders


class _PageShape(NamedTuple):
    """What decides the SQL of a statement page (which filters are set, the order, a
    cursor or not, the columns): the filters' values are bound parameters."""

    learner: bool
    agent: bool
    related_agents: bool
    verb: bool
    registration: bool
    activity: bool
    related_activities: bool
    interactions_only: bool
    interaction_types: bool
    within_sessions: bool
    course: bool
    class_: bool
    tutorial_session: bool
    study_session: bool
    follow_statement_refs: bool
    since: bool
    until: bool
    include_voided: bool
    visible_to: bool
    cursor: bool
    ascending: bool
    texts_only: bool


def _page_shape(f: StatementFilter, cursor: bool, texts_only: bool) -> _PageShape:
    return _PageShape(
        learner=bool(f.learner_id),
        agent=bool(f.agent_key),
        related_agents=f.related_agents,
        verb=bool(f.verb_id),
        registration=bool(f.registration),
        activity=bool(f.activity_id),
        related_activities=f.related_activities,
        interactions_only=f.interactions_only,
        interaction_types=bool(f.interaction_types),
        within_sessions=f.within_sessions is not None,
        course=bool(f.course_id),
        class_=bool(f.class_id),
        tutorial_session=bool(f.tutorial_session_id),
        study_session=bool(f.study_session_id),
        follow_statement_refs=f.follow_statement_refs,
        since=f.since is not None,
        until=f.until is not None,
        include_voided=f.include_voided,
        visible_to=bool(f.visible_to),
        cursor=cursor,
        ascending=f.ascending,
        texts_only=texts_only,
    )


def _page_values(f: StatementFilter, limit: int, cursor: Cursor | None) -> dict[str, Any]:
    """The bound parameters of a page query (those its shape does not use are ignored)."""
    return {
        "learner_id": f.learner_id,
        "agent_key": f.agent_key,
        "verb_id": f.verb_id,
        "registration": f.registration,
        "activity_id": f.activity_id,
        "interaction_types": list(f.interaction_types),
        "within_sessions": list(f.within_sessions or ()),
        "course_id": f.course_id,
        "class_id": f.class_id,
        "tutorial_session_id": f.tutorial_session_id,
        "study_session_id": f.study_session_id,
        "since": f.since,
        "until": f.until,
        "visible_to": f.visible_to,
        "cursor_stored": cursor.stored if cursor is not None else None,
        "cursor_id": cursor.id if cursor is not None else None,
        "page_limit": limit + 1,
    }


def _matching(shape: _PageShape) -> list[ColumnElement[bool]]:
    """The filters that are not time or sequence based (2.1.3.s3)."""
    t = statements
    conditions: list[ColumnElement[bool]] = []
    if shape.learner:
        conditions.append(t.c.learner_id == bindparam("learner_id"))
    if shape.agent:
        a = statement_agents
        match = select(a.c.statement_id).where(a.c.agent_key == bindparam("agent_key"))
        if not shape.related_agents:
            match = match.where(a.c.related.is_(False))
        conditions.append(t.c.id.in_(match))
    if shape.verb:
        conditions.append(t.c.verb_id == bindparam("verb_id"))
    if shape.registration:
        conditions.append(t.c.registration == bindparam("registration"))
    if shape.activity:
        a2 = statement_activities
        found = select(a2.c.statement_id).where(a2.c.activity_id == bindparam("activity_id"))
        if not shape.related_activities:
            found = found.where(a2.c.related.is_(False))
        conditions.append(t.c.id.in_(found))
    if shape.interactions_only:
        conditions.append(t.c.interaction_type.is_not(None))
    if shape.interaction_types:
        types: BindParameter[list[str]] = bindparam("interaction_types", expanding=True)
        conditions.append(t.c.interaction_type.in_(types))
    if shape.within_sessions:
        sessions: BindParameter[list[str]] = bindparam("within_sessions", expanding=True)
        conditions.append(t.c.tutorial_session_id.in_(sessions))
    for column, used in (
        (t.c.course_id, shape.course),
        (t.c.class_id, shape.class_),
        (t.c.tutorial_session_id, shape.tutorial_session),
        (t.c.study_session_id, shape.study_session),
    ):
        if used:
            conditions.append(column == bindparam(column.name))
    return conditions


def _build_page_query(shape: _PageShape) -> Select[Any]:
    t = statements
    matching = _matching(shape)
    conditions: list[ColumnElement[bool]] = []
    if shape.follow_statement_refs and matching:
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
    if shape.since:
        conditions.append(t.c.stored >= bindparam("since"))
    if shape.until:
        conditions.append(t.c.stored <= bindparam("until"))
    if not shape.include_voided:
        conditions.append(t.c.voided.is_(False))
    if shape.visible_to:
        visible_to: BindParameter[str] = bindparam("visible_to")
        conditions.append(or_(t.c.learner_id == visible_to, t.c.recorded_by == visible_to))
    if shape.cursor:
        after = Cursor(bindparam("cursor_stored"), bindparam("cursor_id"))  # type: ignore[arg-type]
        conditions.append(keyset(t.c.stored, t.c.id, after, shape.ascending))
    order = (
        (t.c.stored.asc(), t.c.id.asc()) if shape.ascending else (t.c.stored.desc(), t.c.id.desc())
    )
    limit = bindparam("page_limit", type_=Integer())
    if not shape.texts_only:
        return select(t).where(and_(true(), *conditions)).order_by(*order).limit(limit)
    # The page's ids first (sorting narrow rows), then the JSON of those rows only: the
    # database then never carries every matching statement's text through the sort.
    ids = select(t.c.id).where(and_(true(), *conditions)).order_by(*order).limit(limit)
    page = ids.subquery("page")
    return (
        select(t.c.id, t.c.statement_json, t.c.stored)
        .join_from(t, page, t.c.id == page.c.id)
        .order_by(*order)
    )


# One statement object per shape, reused with new values: SQLAlchemy then neither
# rebuilds it (with its recursive CTE) nor recomputes its cache key on every query. At
# most 2^22 shapes in theory; a few dozen are used.
_PAGE_QUERIES: dict[_PageShape, Select[Any]] = {}


def page_query(
    f: StatementFilter, limit: int, cursor: Cursor | None, *, texts_only: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """The SQL of one page (at most `limit` rows, fetching one more to tell whether a
    next page exists) and its bound parameters."""
    shape = _page_shape(f, cursor is not None, texts_only)
    query = _PAGE_QUERIES.get(shape)
    if query is None:
        query = _PAGE_QUERIES[shape] = _build_page_query(shape)
    return query, _page_values(f, limit, cursor)


async def statement_texts(
    connection: AsyncConnection, f: StatementFilter, limit: int, cursor: Cursor | None
) -> tuple[TextPage, Cursor | None]:
    """`StatementRepository.query_statements` as the statements' JSON texts, on a bare
    connection (`Database.read`): three columns, and no object per row (only the rows at
    the page's ends give its newest time and the next page's cursor)."""
    query, values = page_query(f, limit, cursor, texts_only=True)
    rows = (await connection.execute(query, values)).all()
    page = rows[:limit]
    if not page:
        return TextPage([], None), None
    # The rows are in `stored` order: the newest is the first, or the last when ascending.
    newest = utc_required(page[-1].stored if f.ascending else page[0].stored)
    last = page[-1]
    after = Cursor(utc_required(last.stored), last.id) if len(rows) > limit else None
    return TextPage([row.statement_json for row in page], newest), after


# An anchored statement stays anchored (a late or redelivered failure changes nothing).
_SET_ANCHOR = (
    update(statements)
    .where(
        statements.c.id == bindparam("statement_id"),
        or_(statements.c.anchor_status.is_(None), statements.c.anchor_status != "anchored"),
    )
    .values(
        {
            f"anchor_{k}": bindparam(f"v_{k}")
            for k in AnchorOutcome.__dataclass_fields__
            if k != "anchored_at"
        }
    )
    .values(anchored_at=bindparam("v_anchored_at"))
)


def _anchor_values(statement_id: str, outcome: AnchorOutcome) -> dict[str, Any]:
    return {"statement_id": statement_id, **{f"v_{k}": v for k, v in asdict(outcome).items()}}


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

    async def lookup(
        self, ids: Sequence[str], targets: Sequence[str], arriving: Sequence[str]
    ) -> tuple[dict[str, StatementRecord], dict[str, list[StatementRecord]]]:
        """What storing a batch needs to know, in one SELECT: the stored statements with
        these `ids` or `targets` (statements being voided), by id, and the voiding
        statements already stored for each of `arriving` (2.3.2: a voiding statement is
        accepted before its target arrives), by target."""
        t = statements
        if not ids and not targets and not arriving:
            return {}, {}
        conditions = [t.c.id.in_(list(dict.fromkeys([*ids, *targets])))]
        if arriving:
            conditions.append(t.c.voids_statement_id.in_(list(arriving)))
        rows = [
            statement_record(r)
            for r in (await self.s.execute(select(t).where(or_(*conditions)))).all()
        ]
        return looked_up(rows, [*ids, *targets])

    async def insert_statements(self, batch: Sequence[NewStatement]) -> None:
        """Insert statements with their activity and agent index rows: one executemany
        per table, whatever the batch's size."""
        if not batch:
            return
        await self.s.execute(insert(statements), [statement_values(n.record) for n in batch])
        agents, activities = index_rows(batch)
        if agents:
            await self.s.execute(insert(statement_agents), agents)
        if activities:
            await self.s.execute(insert(statement_activities), activities)

    async def set_anchor(self, statement_id: str, outcome: AnchorOutcome) -> bool:
        """Record an anchoring outcome; an anchored statement stays anchored."""
        result = await self.s.execute(_SET_ANCHOR, _anchor_values(statement_id, outcome))
        return bool(getattr(result, "rowcount", 0))

    async def set_anchors(self, outcomes: Sequence[tuple[str, AnchorOutcome]]) -> None:
        """`set_anchor` for many (statement id, outcome) pairs, in order: one executemany
        (a consumer's page of anchors is one pipelined round trip, one compiled UPDATE)."""
        if outcomes:
            await self.s.execute(_SET_ANCHOR, [_anchor_values(i, o) for i, o in outcomes])

    async def mark_voided(self, statement_ids: Sequence[str]) -> None:
        if statement_ids:
            t = statements
            await self.s.execute(
                update(t).where(t.c.id.in_(list(statement_ids))).values(voided=True)
            )

    async def query_statements(
        self, f: StatementFilter, limit: int, cursor: Cursor | None
    ) -> tuple[list[StatementRecord], Cursor | None]:
        """One page (at most `limit` rows) and the cursor of the next page, if any."""
        query, values = page_query(f, limit, cursor, texts_only=False)
        rows = [statement_record(r) for r in (await self.s.execute(query, values)).all()]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, Cursor(page[-1].stored, page[-1].id)

    async def store_attachments(
        self, parts: Sequence[StoredAttachment], links: Sequence[tuple[str, str]], now: datetime
    ) -> None:
        """Keep attachment data once per digest (a second copy of the same data is a no-op)
        and link statements to it (`links`: statement id, SHA-2): one insert each."""
        await insert_ignore_many(
            self.s,
            attachments,
            [
                {
                    "sha2": p.sha2,
                    "content_type": p.content_type[:255],
                    "length": len(p.content),
                    "content": p.content,
                    "created_at": now,
                }
                for p in {p.sha2: p for p in parts}.values()
            ],
            "sha2",
        )
        await insert_ignore_many(
            self.s,
            statement_attachments,
            [{"statement_id": i, "sha2": sha2} for i, sha2 in dict.fromkeys(links)],
            "sha2",
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
