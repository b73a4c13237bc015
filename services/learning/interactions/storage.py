"""Statements built by PrepareInteraction for device signing (`prepared_interactions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import ID, mapping, metadata, row_values, ts_column

prepared_interactions = Table(
    "prepared_interactions",
    metadata,
    Column("statement_id", String(36), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    Column("prepared_by", String(ID), nullable=False),
    Column("statement_json", Text, nullable=False),
    ts_column("created_at"),
)


@dataclass(frozen=True)
class PreparedRecord:
    statement_id: str
    learner_id: str
    prepared_by: str
    statement_json: str
    created_at: datetime


class PreparedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_many(self, statement_ids: Sequence[str]) -> dict[str, PreparedRecord]:
        """The prepared statements with these ids, by id, in one query (none for no ids)."""
        if not statement_ids:
            return {}
        t = prepared_interactions
        query = select(t).where(t.c.statement_id.in_(statement_ids))
        found = [PreparedRecord(**mapping(r)) for r in (await self.s.execute(query)).all()]
        return {r.statement_id: r for r in found}

    async def insert(self, record: PreparedRecord) -> None:
        t = prepared_interactions
        await self.s.execute(insert(t).values(**row_values(record, t)))
