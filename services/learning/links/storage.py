"""Actor link tables: `actor_link_codes` (only the SHA-256 of each code) and
`actor_links`. At most one link is in force per (institution, identity): the `slot` column
is "active" while it is and the link's own id once revoked, under a unique constraint on
(institution_id, agent_key, slot), so two concurrent confirmations cannot both win."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.learning.common.storage import (
    ID,
    IRI,
    Cursor,
    mapping,
    metadata,
    page_rows,
    ts_column,
)
from services.learning.links.domain import ACTIVE

actor_link_codes = Table(
    "actor_link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    ts_column("created_at"),
    ts_column("expires_at"),
    ts_column("used_at", nullable=True),
    Index(None, "learner_id", "expires_at"),
)

actor_links = Table(
    "actor_links",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("learner_id", String(ID), nullable=False),
    Column("institution_id", String(ID), nullable=False),
    Column("agent_key", String(IRI), nullable=False),
    Column("agent_json", Text, nullable=False),
    Column("slot", String(36), nullable=False),
    ts_column("created_at"),
    ts_column("revoked_at", nullable=True),
    UniqueConstraint("institution_id", "agent_key", "slot"),
    Index(None, "learner_id", "created_at"),
    Index(None, "institution_id", "created_at"),
)


@dataclass(frozen=True)
class ActorLinkRecord:
    id: str
    learner_id: str
    institution_id: str
    agent_key: str
    agent_json: str
    slot: str
    created_at: datetime
    revoked_at: datetime | None


def _link(values: dict[str, Any]) -> ActorLinkRecord:
    return ActorLinkRecord(**values)


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add_code(
        self, code_hash: str, learner_id: str, now: datetime, expires: datetime
    ) -> None:
        await self.s.execute(
            insert(actor_link_codes).values(
                code_hash=code_hash, learner_id=learner_id, created_at=now, expires_at=expires
            )
        )

    async def open_codes(self, learner_id: str, now: datetime) -> int:
        c = actor_link_codes
        query = select(func.count()).where(
            c.c.learner_id == learner_id, c.c.expires_at > now, c.c.used_at.is_(None)
        )
        return int((await self.s.execute(query)).scalar_one())

    async def use_code(self, code_hash: str, now: datetime) -> str | None:
        """The learner of an unexpired, unused code, marking it used; None otherwise. The
        conditional UPDATE makes a code work once even under concurrent confirmations."""
        c = actor_link_codes
        row = (
            await self.s.execute(select(c.c.learner_id).where(c.c.code_hash == code_hash))
        ).first()
        if row is None:
            return None
        result = await self.s.execute(
            update(c)
            .where(c.c.code_hash == code_hash, c.c.used_at.is_(None), c.c.expires_at > now)
            .values(used_at=now)
        )
        return str(row.learner_id) if getattr(result, "rowcount", 0) else None

    async def active(self, institution_id: str, agent_key: str) -> ActorLinkRecord | None:
        t = actor_links
        row = (
            await self.s.execute(
                select(t).where(
                    t.c.institution_id == institution_id,
                    t.c.agent_key == agent_key,
                    t.c.slot == ACTIVE,
                )
            )
        ).first()
        return _link(mapping(row)) if row is not None else None

    async def active_learners(
        self, institution_id: str, agent_keys: Sequence[str]
    ) -> dict[str, str]:
        """The learner each of `agent_keys` is linked to by the institution (linked keys
        only): one SELECT for a whole batch of statements."""
        if not agent_keys:
            return {}
        t = actor_links
        rows = (
            await self.s.execute(
                select(t.c.agent_key, t.c.learner_id).where(
                    t.c.institution_id == institution_id,
                    t.c.agent_key.in_(list(dict.fromkeys(agent_keys))),
                    t.c.slot == ACTIVE,
                )
            )
        ).all()
        return {str(r.agent_key): str(r.learner_id) for r in rows}

    async def get(self, link_id: str) -> ActorLinkRecord | None:
        row = (await self.s.execute(select(actor_links).where(actor_links.c.id == link_id))).first()
        return _link(mapping(row)) if row is not None else None

    async def insert(self, record: ActorLinkRecord) -> None:
        await self.s.execute(
            insert(actor_links).values(
                {c.name: getattr(record, c.name) for c in actor_links.columns}
            )
        )

    async def revoke(self, link_id: str, now: datetime) -> None:
        t = actor_links
        await self.s.execute(
            update(t)
            .where(t.c.id == link_id, t.c.slot == ACTIVE)
            .values(slot=link_id, revoked_at=now)
        )

    async def page_of(
        self, user_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[ActorLinkRecord], Cursor | None]:
        t = actor_links
        condition = or_(t.c.learner_id == user_id, t.c.institution_id == user_id)
        return await page_rows(self.s, t, "created_at", [condition], limit, cursor, _link)
