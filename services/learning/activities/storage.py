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
        self, owner_id: str, definitions: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        """Merge each activity's `definitions[id]` into the owner's canonical one: one
        SELECT for all of them (rows locked: PostgreSQL SELECT FOR UPDATE; SQLite writers
        are serialized), then an insert-or-ignore for new activities and an update only
        where the merge changed something (tools mostly resend the same definitions)."""
        if not definitions:
            return
        t = activity_definitions
        hashes = {activity_hash(a): a for a in definitions}
        rows = (
            await self.s.execute(
                select(t.c.activity_hash, t.c.definition_json)
                .where(t.c.owner_id == owner_id, t.c.activity_hash.in_(list(hashes)))
                .with_for_update()
            )
        ).all()
        stored = {r.activity_hash: r.definition_json for r in rows}
        for key, activity_id in hashes.items():
            new = definitions[activity_id]
            if key not in stored:
                values = {
                    "owner_id": owner_id,
                    "activity_hash": key,
                    "activity_id": activity_id,
                    "definition_json": _text(merge_definition(None, new)),
                    "updated": now,
                }
                if await insert_ignore(self.s, t, values):
                    continue
                # A concurrent writer created it first: merge into theirs.
                stored[key] = (
                    await self.s.execute(
                        select(t.c.definition_json)
                        .where(t.c.owner_id == owner_id, t.c.activity_hash == key)
                        .with_for_update()
                    )
                ).scalar_one()
            before = json.loads(stored[key])
            merged = merge_definition(before, new)
            if merged != before:
                await self.s.execute(
                    update(t)
                    .where(t.c.owner_id == owner_id, t.c.activity_hash == key)
                    .values(definition_json=_text(merged), updated=now)
                )


def _text(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
