"""Storing statements on PostgreSQL in fewer round trips: what a batch depends on in one
read, and the writes of one statement as one SQL statement.

`lookup_with_definitions` is `StatementRepository.lookup` and the plain read of
`ActivityRepository.remember` in one SELECT (a round trip less for every batch).

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

from sqlalchemy import (
    JSON,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.activities.storage import activity_definitions
from services.learning.common.storage import outbox
from services.learning.statements.domain import StatementRecord
from services.learning.statements.storage import (
    NewStatement,
    index_rows,
    looked_up,
    statement_record,
    statement_values,
)
from services.learning.statements.tables import statement_activities, statement_agents, statements


def _build_read() -> Any:
    ad = activity_definitions
    pairs = func.json_build_array(ad.c.activity_hash, ad.c.definition_json)
    hashes = bindparam("hashes", type_=ARRAY(String))
    definitions = (
        select(func.json_agg(pairs, type_=JSON).label("definitions"))
        .where(ad.c.owner_id == bindparam("owner_id"), ad.c.activity_hash == any_(hashes))
        .subquery("d")
    )
    t = statements
    found = or_(
        t.c.id == any_(bindparam("ids", type_=ARRAY(String))),
        t.c.voids_statement_id == any_(bindparam("arriving", type_=ARRAY(String))),
    )
    # The aggregate is one row: the statements found join it (none: one row of NULLs).
    return select(*t.columns, definitions.c.definitions).select_from(
        definitions.outerjoin(t, found)
    )


_READ = _build_read()


async def lookup_with_definitions(
    s: AsyncSession,
    ids: Sequence[str],
    targets: Sequence[str],
    arriving: Sequence[str],
    owner_id: str,
    hashes: Sequence[str],
) -> tuple[dict[str, StatementRecord], dict[str, list[StatementRecord]], dict[str, str]]:
    """`StatementRepository.lookup(ids, targets, arriving)` and the stored definition texts
    of `owner_id`'s activities with these `hashes` (by hash), in one SELECT."""
    if not ids and not targets and not arriving and not hashes:
        return {}, {}, {}
    values = {
        "ids": list(dict.fromkeys([*ids, *targets])),
        "arriving": list(arriving),
        "owner_id": owner_id,
        "hashes": list(hashes),
    }
    rows = (await s.execute(_READ, values)).all()
    pairs = rows[0].definitions or []
    records = [
        statement_record({k: v for k, v in row._mapping.items() if k != "definitions"})
        for row in rows
        if row.id is not None
    ]
    by_id, voiders = looked_up(records, [*ids, *targets])
    return by_id, voiders, {key: text for key, text in pairs}


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
        func.unnest(*(bindparam(f"{prefix}{n}", type_=ARRAY(table.c[n].type)) for n in names))
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
