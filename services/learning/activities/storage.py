"""The `activity_definitions` table: each owner's canonical definition of each Activity
(merged from the statements the owner stored), and its repository."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.activities.domain import merge_definition
from services.learning.common.storage import ID, IRI, insert_ignore, metadata, ts_column

activity_definitions = Table(
    "activity_definitions",
    metadata,
    Column("owner_id", String(ID), primary_key=True),
    # SHA-256 of the activity IRI (IRIs are up to 2 KiB; the key stays small).
    Column("activity_hash", String(64), primary_key=True),
    Column("activity_id", String(IRI), nullable=False),
    Column("definition_json", Text, nullable=False),
    ts_column("updated"),
)


def activity_hash(activity_id: str) -> str:
    return hashlib.sha256(activity_id.encode("utf-8")).hexdigest()


class ActivityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def definitions(
        self, owner_id: str, activity_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        hashes = {activity_hash(a): a for a in activity_ids}
        if not hashes:
            return {}
        t = activity_definitions
        rows = (
            await self.s.execute(
                select(t.c.activity_id, t.c.definition_json).where(
                    t.c.owner_id == owner_id, t.c.activity_hash.in_(list(hashes))
                )
            )
        ).all()
        return {r.activity_id: json.loads(r.definition_json) for r in rows}

    async def remember(
        self, owner_id: str, activity_id: str, definition: Mapping[str, Any], now: datetime
    ) -> None:
        """Merge `definition` into the owner's canonical one. The row is created with
        insert-or-ignore and then updated under the row lock (PostgreSQL SELECT FOR
        UPDATE; SQLite writers are serialized), so concurrent statements never abort."""
        t = activity_definitions
        key = activity_hash(activity_id)
        await insert_ignore(
            self.s,
            t,
            {
                "owner_id": owner_id,
                "activity_hash": key,
                "activity_id": activity_id,
                "definition_json": "{}",
                "updated": now,
            },
        )
        where = (t.c.owner_id == owner_id, t.c.activity_hash == key)
        current = (
            await self.s.execute(select(t.c.definition_json).where(*where).with_for_update())
        ).scalar_one()
        merged = merge_definition(json.loads(current), definition)
        await self.s.execute(
            update(t)
            .where(*where)
            .values(
                definition_json=json.dumps(merged, ensure_ascii=False, separators=(",", ":")),
                updated=now,
            )
        )
