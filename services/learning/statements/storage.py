"""The statements' repository: queries and writes of the statement tables
(`services.learning.statements.tables`), and the xAPI page queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import (
    Cursor,
    insert_ignore_many,
    utc,
    utc_required,
)
from services.learning.statements.domain import (
    AnchorOutcome,
    InteractionDetails,
    StatementRecord,
)
from services.learning.statements.pages import StatementFilter, page_query
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
        {"statement_id": n.record.id, "agent_key": k, "related": r, "stored": n.record.stored}
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
