"""The xAPI page queries of the statement tables (`services.learning.statements.tables`):
one SQL statement per shape of filter, its values bound.

With the StatementRef rule (xAPI 2.1.3.s3: a statement targeting a matching statement
matches the non-time filters too, recursively), a page is the newest (or oldest) rows of
two ordered, limited scans:

* the statements matching the filters themselves: by agent, a range of the agent index
  (agent_key, stored, statement_id), so a page reads about `limit` index rows whatever
  the agent's history;
* StatementRef statements in the page's time window (up to the last of those), each
  checked by following its targets (`_targets_match`): the index (object_type, stored, id).

Neither scan depends on how many statements the filters match before the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    DateTime,
    Integer,
    and_,
    bindparam,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import FromClause, Select
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from services.learning.common.storage import Cursor, keyset, query_scope, utc_required
from services.learning.statements.tables import (
    statement_activities,
    statement_agents,
    statements,
)


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


def _matching(shape: _PageShape, t: FromClause, *, agent: bool = True) -> list[ColumnElement[bool]]:
    """The filters that are not time or sequence based (2.1.3.s3), on `t` (an alias of
    `statements`); `agent=False` leaves out the agent filter (the caller reads the agent
    index itself)."""
    conditions: list[ColumnElement[bool]] = []
    if shape.learner:
        conditions.append(t.c.learner_id == bindparam("learner_id"))
    if shape.agent and agent:
        # A probe of the index's key per statement (not the agent's every row).
        a = statement_agents
        match = exists().where(a.c.statement_id == t.c.id, a.c.agent_key == bindparam("agent_key"))
        if not shape.related_agents:
            match = match.where(a.c.related.is_(False))
        conditions.append(match)
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
    for name, used in (
        ("course_id", shape.course),
        ("class_id", shape.class_),
        ("tutorial_session_id", shape.tutorial_session),
        ("study_session_id", shape.study_session),
    ):
        if used:
            conditions.append(t.c[name] == bindparam(name))
    return conditions


def _window(
    shape: _PageShape, stored: ColumnElement[Any], id_: ColumnElement[Any]
) -> list[ColumnElement[bool]]:
    """since / until and the cursor, on these columns of `stored` and id."""
    conditions: list[ColumnElement[bool]] = []
    if shape.since:
        conditions.append(stored >= bindparam("since"))
    if shape.until:
        conditions.append(stored <= bindparam("until"))
    if shape.cursor:
        after = Cursor(bindparam("cursor_stored"), bindparam("cursor_id"))  # type: ignore[arg-type]
        conditions.append(keyset(stored, id_, after, shape.ascending))
    return conditions


def _shown(shape: _PageShape, t: FromClause) -> list[ColumnElement[bool]]:
    """Not voided (unless asked) and visible to the caller."""
    conditions: list[ColumnElement[bool]] = []
    if not shape.include_voided:
        conditions.append(t.c.voided.is_(False))
    if shape.visible_to:
        visible_to: BindParameter[str] = bindparam("visible_to")
        conditions.append(or_(t.c.learner_id == visible_to, t.c.recorded_by == visible_to))
    return conditions


def _ordered(shape: _PageShape, query: Select[Any], stored: Any, id_: Any) -> Select[Any]:
    order = (stored.asc(), id_.asc()) if shape.ascending else (stored.desc(), id_.desc())
    return query.order_by(*order).limit(bindparam("page_limit", type_=Integer()))


def _direct(shape: _PageShape) -> Select[Any]:
    """(stored, id) of the page's statements matching the filters themselves, in page
    order: by agent, a range of the agent index."""
    t = statements
    if not shape.agent:
        query = select(t.c.stored, t.c.id).where(
            and_(true(), *_matching(shape, t)), *_window(shape, t.c.stored, t.c.id)
        )
        return _ordered(shape, query.where(*_shown(shape, t)), t.c.stored, t.c.id)
    a = statement_agents
    conditions = [a.c.agent_key == bindparam("agent_key"), *_matching(shape, t, agent=False)]
    if not shape.related_agents:
        conditions.append(a.c.related.is_(False))
    query = (
        select(a.c.stored.label("stored"), a.c.statement_id.label("id"))
        .select_from(a.join(t, t.c.id == a.c.statement_id))
        .where(*conditions, *_window(shape, a.c.stored, a.c.statement_id), *_shown(shape, t))
    )
    return _ordered(shape, query, a.c.stored, a.c.statement_id)


def _targets_match(shape: _PageShape, referring: FromClause) -> ColumnElement[bool]:
    """Whether a statement the StatementRef `referring` targets (or one that one targets,
    and so on) matches the filters. Voided targets count: 2.1.4.s1.b2."""
    chained = statements.alias("chained")
    seed = select(referring.c.object_id.label("id")).correlate(referring)
    chain = seed.cte("chain", recursive=True, nesting=True)
    chain = chain.union(
        select(chained.c.object_id).where(
            chained.c.id == chain.c.id, chained.c.object_type == "StatementRef"
        )
    )
    target = statements.alias("target")
    return exists(
        select(target.c.id)
        .join_from(target, chain, target.c.id == chain.c.id)
        .where(*_matching(shape, target))
    )


# Where the StatementRef scan stops when the first scan did not fill the page.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def _referring(shape: _PageShape, direct: Any) -> Select[Any]:
    """(stored, id) of the page's StatementRef statements that match by their targets
    only, in page order, no further than the last row of `direct` (a full page of those
    is already older, or newer when ascending)."""
    r = statements.alias("referring")
    limit = bindparam("page_limit", type_=Integer())
    edge = func.max(direct.c.stored) if shape.ascending else func.min(direct.c.stored)
    last = select(edge).having(func.count() >= limit).scalar_subquery()
    bound = func.coalesce(
        last, literal(_LATEST if shape.ascending else _EARLIEST, DateTime(timezone=True))
    )
    itself = statements.alias("itself")
    matches_itself = exists().where(itself.c.id == r.c.id, *_matching(shape, itself))
    query = select(r.c.stored, r.c.id).where(
        r.c.object_type == "StatementRef",
        r.c.stored <= bound if shape.ascending else r.c.stored >= bound,
        *_window(shape, r.c.stored, r.c.id),
        *_shown(shape, r),
        not_(matches_itself),
        _targets_match(shape, r),
    )
    return _ordered(shape, query, r.c.stored, r.c.id)


def _page_ids(shape: _PageShape) -> Select[Any]:
    """(stored, id) of the page's rows in page order, `page_limit` at most."""
    direct = _direct(shape)
    if not (shape.follow_statement_refs and _matching(shape, statements)):
        return direct
    first = direct.cte("direct")
    scans = union_all(
        select(first.c.stored, first.c.id),
        select(*_referring(shape, first).subquery("referred").c),
    ).subquery("scans")
    return _ordered(shape, select(scans.c.stored, scans.c.id), scans.c.stored, scans.c.id)


def _build_page_query(shape: _PageShape) -> Select[Any]:
    t = statements
    page = _page_ids(shape).subquery("page")
    order = (
        (t.c.stored.asc(), t.c.id.asc()) if shape.ascending else (t.c.stored.desc(), t.c.id.desc())
    )
    # The page's ids first (sorting narrow rows), then the rows (or JSON) of those only:
    # the database then never carries every matching statement's text through the sort.
    columns = (t.c.id, t.c.statement_json, t.c.stored) if shape.texts_only else tuple(t.c)
    return select(*columns).join_from(t, page, t.c.id == page.c.id).order_by(*order)


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
