"""The xAPI page queries by agent on both engines: the StatementRef rule across pages,
and a page reads the newest rows of the agent index, not the agent's whole history."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, Table, event, insert

from services.kit.db import Database
from services.learning.common.storage import Cursor
from services.learning.statements.pages import StatementFilter, page_query
from services.learning.statements.storage import (
    NewStatement,
    StatementRepository,
    statement_values,
)
from services.learning.statements.tables import statement_agents, statements
from services.learning.tests.test_storage import row

AGENT = "mailto:ana@example.org"
OTHER = "mailto:bo@example.org"
START = datetime(2026, 1, 1, tzinfo=UTC)
PAGE_INDEX = "ix_statement_agents_agent_key_stored_statement_id"

# The two tables as revision 047f2f6139b0 left them (before `stored` in the agent index).
_BEFORE = {c.name for c in statements.columns}
_old = MetaData(schema="learning")
_statements_before = Table("statements", _old, *(Column(c.name, c.type) for c in statements.c))
_agents_before = Table(
    "statement_agents",
    _old,
    *(Column(c.name, c.type) for c in statement_agents.c if c.name != "stored"),
)


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


def sid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def about(n: int, agent: str, at: int = 0, **kw: Any) -> NewStatement:
    """Statement `n` about `agent`, stored `at` (or `n`) seconds after START."""
    stored = START + timedelta(seconds=at or n)
    return NewStatement(row(sid(n), stored, **kw), agents=[(agent, False)])


def ref(n: int, target: int, at: int = 0) -> NewStatement:
    """A statement of OTHER whose object is a StatementRef to statement `target`."""
    return about(n, OTHER, at, object_type="StatementRef", object_id=sid(target))


async def pages(db: Database, f: StatementFilter, limit: int) -> list[int]:
    """Every page of `f`, followed through its cursors: the statements' numbers."""
    found: list[int] = []
    cursor: Cursor | None = None
    while True:
        async with db.session() as s:
            rows, cursor = await StatementRepository(s).query_statements(f, limit, cursor)
        found.extend(int(r.id[-12:]) for r in rows)
        if cursor is None:
            return found


async def test_statement_refs_match_on_every_page(migrated_database: Database) -> None:
    # Statements 1..120 about AGENT (every tenth about OTHER); StatementRefs by OTHER to
    # an old match (stored between pages), to a referrer (a chain), to a non-match, and
    # one stored before its target.
    batch = [about(n, OTHER if n % 10 == 0 else AGENT) for n in range(1, 121)]
    batch += [ref(200, 1), ref(1055, 3, at=55), ref(201, 200), ref(202, 10)]
    batch += [ref(150, 300), about(300, AGENT)]
    async with migrated_database.transaction() as s:
        await StatementRepository(s).insert_statements(batch)
    at = {n: n for n in range(1, 301)} | {1055: 55}
    mine = [n for n in range(1, 121) if n % 10] + [1055, 150, 200, 201, 300]
    newest_first = sorted(mine, key=lambda n: (at[n], sid(n)), reverse=True)
    f = StatementFilter(agent_key=AGENT, follow_statement_refs=True)
    ascending = StatementFilter(agent_key=AGENT, follow_statement_refs=True, ascending=True)
    for limit in (1, 7, 50, 500):
        assert await pages(migrated_database, f, limit) == newest_first
        assert await pages(migrated_database, ascending, limit) == newest_first[::-1]
    since = StatementFilter(
        agent_key=AGENT, follow_statement_refs=True, since=START + timedelta(seconds=100)
    )
    assert await pages(migrated_database, since, 5) == [n for n in newest_first if at[n] >= 100]


@contextmanager
def explained(db: Database, prefix: str) -> Iterator[None]:
    """Every SQL statement run meanwhile is run as `prefix` + statement (EXPLAIN)."""

    def explain(conn: object, cursor: object, sql: str, params: Any, *args: object) -> Any:
        return prefix + sql, params

    event.listen(db.engine.sync_engine, "before_cursor_execute", explain, retval=True)
    try:
        yield
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", explain)


def _index_rows(plan: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(index name, rows it returned) of every index scan in a PostgreSQL plan."""
    if "Index Name" in plan:
        yield plan["Index Name"], plan["Actual Rows"] * plan["Actual Loops"]
    for child in plan.get("Plans", ()):
        yield from _index_rows(child)


@pytest.mark.parametrize("history", [2000, 8000])
async def test_a_page_reads_the_newest_rows_of_the_agent_index(
    migrated_database: Database, history: int
) -> None:
    batch = [about(n, AGENT) for n in range(1, history + 1)] + [ref(history + 1, 1)]
    async with migrated_database.transaction() as s:
        await StatementRepository(s).insert_statements(batch)
    f = StatementFilter(agent_key=AGENT, follow_statement_refs=True, visible_to="ana")
    query, values = page_query(f, 50, None, texts_only=True)
    postgres = migrated_database.engine.dialect.name == "postgresql"
    async with migrated_database.engine.connect() as conn:
        if postgres:
            await conn.exec_driver_sql("ANALYZE learning.statement_agents")
            await conn.exec_driver_sql("ANALYZE learning.statements")
        prefix = "EXPLAIN (ANALYZE, FORMAT JSON) " if postgres else "EXPLAIN QUERY PLAN "
        with explained(migrated_database, prefix):
            plan = (await conn.execute(query, values)).all()
    if postgres:
        document = plan[0][0]
        tree = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
        scans = list(_index_rows(tree))
        # The agent index is read in order and stops at the page (51 rows), whatever the
        # agent's history.
        assert [n for name, n in scans if name == PAGE_INDEX] == [51]
    else:
        details = [r[-1] for r in plan]
        # One range of the agent index (the page, newest first), and only probes by key
        # otherwise: nothing reads all of the agent's rows.
        assert [d for d in details if "statement_agents" in d and "(agent_key=?)" in d] == [
            f"SEARCH learning.statement_agents USING INDEX {PAGE_INDEX} (agent_key=?)"
        ], details
        assert not any(d.startswith("SCAN") and "statement_agents" in d for d in details)


async def test_the_migration_backfills_stored_into_the_agent_index(database: Database) -> None:
    from services.kit.migrations import service_migration_dirs, upgrade

    migrations = service_migration_dirs()["learning"]
    await upgrade(database, "learning", migrations, "047f2f6139b0")
    record = row(sid(1), START + timedelta(seconds=7))
    values = {k: v for k, v in statement_values(record).items() if k in _BEFORE}
    async with database.transaction() as s:
        await s.execute(insert(_statements_before), [values])
        await s.execute(
            insert(_agents_before), [{"statement_id": sid(1), "agent_key": AGENT, "related": False}]
        )
    await upgrade(database, "learning", migrations)
    async with database.session() as s:
        rows, _ = await StatementRepository(s).query_statements(
            StatementFilter(agent_key=AGENT, follow_statement_refs=True), 10, None
        )
    assert [(r.id, r.stored) for r in rows] == [(sid(1), record.stored)]
