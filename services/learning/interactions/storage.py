"""Statements built by PrepareInteraction for device signing (`prepared_interactions`)."""

from __future__ import annotations

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

    async def get(self, statement_id: str) -> PreparedRecord | None:
        t = prepared_interactions
        row = (await self.s.execute(select(t).where(t.c.statement_id == statement_id))).first()
        return PreparedRecord(**mapping(row)) if row is not None else None

    async def insert(self, record: PreparedRecord) -> None:
        t = prepared_interactions
        await self.s.execute(insert(t).values(**row_values(record, t)))
