"""The `activity_definitions` table: each owner's canonical definition of each Activity
(merged from the statements the owner stored), and its repository."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, String, Table, Text, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.activities.domain import merge_definition
from services.learning.common.storage import (
    ID,
    IRI,
    insert_ignore_many,
    metadata,
    ts_column,
)

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
        self,
        owner_id: str,
        definitions: Sequence[Mapping[str, Mapping[str, Any]]],
        now: datetime,
        *,
        may_write: bool = True,
        seen: Mapping[str, str] | None = None,
    ) -> bool:
        """Merge the definitions of a batch of statements (`definitions[i]`: statement i's,
        by activity id), in order, into the owner's canonical ones. Tools mostly resend the
        same definitions: a plain SELECT tells whether any merge changes something, and
        only then are the rows written: the new activities inserted with one
        insert-or-ignore, every row locked (PostgreSQL SELECT FOR UPDATE; SQLite writers
        are serialized) and read again, changed ones updated with one executemany. Skipping
        the lock when nothing changes is the order "this batch, then the concurrent
        writer", so concurrent statements of one learner no longer queue on the same rows.

        Both the inserts and the locks go in activity hash order, inserts first: every
        writer then waits only for rows earlier in one order, so concurrent batches naming
        the same new activities cannot deadlock. (Locking what existed, then inserting, then
        locking what a concurrent writer had inserted meanwhile did: RecordInteractions
        batches at 8 clients on PostgreSQL.)

        False (nothing written) when something changes and not `may_write`: the caller
        runs outside a transaction and must store the batch in one. `seen`: the plain
        SELECT's answer when the caller read it already (with its own reads)."""
        wanted = {activity_hash(a): a for d in definitions for a in d}
        if not wanted:
            return True
        if seen is None:
            seen = await self._stored(owner_id, wanted, lock=False)
        if not _changes(definitions, seen):
            return True
        if not may_write:
            return False
        t = activity_definitions
        await insert_ignore_many(
            self.s,
            t,
            [
                {
                    "owner_id": owner_id,
                    "activity_hash": key,
                    "activity_id": wanted[key],
                    "definition_json": _text(_fold(None, definitions, wanted[key])),
                    "updated": now,
                }
                for key in sorted(wanted)
                if key not in seen
            ],
            "activity_hash",
        )
        # Rows this batch inserted already hold every definition (no change below); those
        # a concurrent writer inserted or changed meanwhile are merged into.
        stored = await self._stored(owner_id, wanted, lock=True)
        changes = []
        for key, text in stored.items():
            before = json.loads(text)
            merged = _fold(before, definitions, wanted[key])
            if merged != before:
                changes.append({"o": owner_id, "h": key, "d": _text(merged), "u": now})
        if changes:
            await self.s.execute(
                update(t)
                .where(t.c.owner_id == bindparam("o"), t.c.activity_hash == bindparam("h"))
                .values(definition_json=bindparam("d"), updated=bindparam("u")),
                changes,
            )
        return True

    async def _stored(
        self, owner_id: str, wanted: Mapping[str, str], *, lock: bool
    ) -> dict[str, str]:
        """The stored definition texts of the activity hashes in `wanted`."""
        t = activity_definitions
        query = select(t.c.activity_hash, t.c.definition_json).where(
            t.c.owner_id == owner_id, t.c.activity_hash.in_(list(wanted))
        )
        if lock:  # in hash order (see `remember`)
            query = query.order_by(t.c.activity_hash).with_for_update()
        rows = (await self.s.execute(query)).all()
        return {r.activity_hash: r.definition_json for r in rows}


def _fold(
    start: Mapping[str, Any] | None,
    definitions: Sequence[Mapping[str, Mapping[str, Any]]],
    activity_id: str,
) -> dict[str, Any]:
    """`start` after merging each statement's definition of `activity_id`, in order."""
    out = dict(start) if start is not None else None
    for d in definitions:
        if activity_id in d:
            out = merge_definition(out, d[activity_id])
    return out if out is not None else {}


def _changes(
    definitions: Sequence[Mapping[str, Mapping[str, Any]]], stored: Mapping[str, str]
) -> bool:
    """Whether merging `definitions` changes (or creates) any stored definition."""
    for activity_id in {a for d in definitions for a in d}:
        text = stored.get(activity_hash(activity_id))
        if text is None:
            return True
        before = json.loads(text)
        if _fold(before, definitions, activity_id) != before:
            return True
    return False


def _text(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
