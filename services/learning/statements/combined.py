"""The writes of one stored statement as one SQL statement on PostgreSQL.

Storing a statement writes its row, its agent and activity index rows, the statement it
voids and its outbox event: up to five statements, each a round trip to PostgreSQL (on a
single-statement POST, with BEGIN, the lookups and COMMIT, those round trips were most of
the learning service's CPU in a py-spy profile). Here they are one statement with
data-modifying CTEs: one round trip, and atomic on its own, so a caller whose reads need
no common snapshot may run it outside a transaction (`Database.autocommit_session`).

The SQL depends only on which parts are present (index rows come as arrays through
`unnest`, whatever their number): SQLAlchemy compiles each of the few shapes once (a
multi-row VALUES would not be cached) and asyncpg reuses its prepared statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Boolean, String, Table, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import outbox
from services.learning.statements.storage import NewStatement, index_rows, statement_values
from services.learning.statements.tables import statement_activities, statement_agents, statements


class _Shape(NamedTuple):
    agents: bool
    activities: bool
    voids: bool
    event: bool


_WRITES: dict[_Shape, Any] = {}
_OUTBOX_COLUMNS = ("event_id", "topic", "key", "payload", "occurred_at")


def _one_row(table: Table, prefix: str, names: Sequence[str]) -> Any:
    return insert(table).values(
        {n: bindparam(f"{prefix}{n}", type_=table.c[n].type) for n in names}
    )


def _index_rows(table: Table, prefix: str) -> Any:
    """INSERT ... SELECT FROM unnest(arrays): the rows of an index table, any number."""
    names = [c.name for c in table.columns]
    rows = (
        func.unnest(
            *(
                bindparam(f"{prefix}{n}", type_=ARRAY(Boolean if n == "related" else String))
                for n in names
            )
        )
        .table_valued(*names)
        .render_derived()
    )
    return insert(table).from_select(names, select(*(rows.c[n] for n in names)))


def _build(shape: _Shape) -> Any:
    parts = [_one_row(statements, "s_", [c.name for c in statements.columns])]
    if shape.agents:
        parts.append(_index_rows(statement_agents, "ag_"))
    if shape.activities:
        parts.append(_index_rows(statement_activities, "ac_"))
    if shape.voids:
        voids = bindparam("voids", type_=ARRAY(String))
        parts.append(update(statements).where(statements.c.id == any_(voids)).values(voided=True))
    if shape.event:
        parts.append(_one_row(outbox, "o_", _OUTBOX_COLUMNS))
    *ctes, last = parts
    return last.add_cte(*(part.cte(f"w{i}") for i, part in enumerate(ctes)))


async def write_one(
    s: AsyncSession,
    new: NewStatement,
    voided: Sequence[str],
    events: Sequence[Mapping[str, Any]],
) -> None:
    """Insert `new` with its index rows, mark the statements `voided` voided and add the
    outbox rows `events` (at most one: `services.kit.events.outbox.outbox_rows`), in one
    statement."""
    if len(events) > 1:
        raise ValueError("one statement has at most one event")
    agents, activities = index_rows([new])
    shape = _Shape(bool(agents), bool(activities), bool(voided), bool(events))
    query = _WRITES.get(shape)
    if query is None:
        query = _WRITES[shape] = _build(shape)
    # Every column has a field of the record (the anchoring ones start NULL).
    values = {f"s_{k}": v for k, v in statement_values(new.record).items()}
    for prefix, rows, table in (
        ("ag_", agents, statement_agents),
        ("ac_", activities, statement_activities),
    ):
        if rows:
            values.update({f"{prefix}{c.name}": [r[c.name] for r in rows] for c in table.columns})
    if voided:
        values["voids"] = list(voided)
    for event in events:
        values.update({f"o_{k}": event[k] for k in _OUTBOX_COLUMNS})
    await s.execute(query, values)
