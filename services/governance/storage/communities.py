"""Communities, their members and the mirror of identity's proof-of-humanity state that
makes a member a verified human (an eligible voter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from services.governance import domain as d
from services.governance.storage.common import Store, metadata, ts
from services.kit.clock import as_utc

communities = Table(
    "communities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(d.MAX_NAME_CHARS), nullable=False),
    # casefolded name: names are unique regardless of case
    Column("name_key", String(d.MAX_NAME_CHARS), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("request_id", String(d.MAX_REQUEST_ID_CHARS), nullable=True),
    ts("created_at"),
    ts("updated_at"),
    UniqueConstraint("created_by", "request_id"),
)


members = Table(
    "members",
    metadata,
    Column(
        "community_id",
        String(36),
        ForeignKey("communities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    ts("joined_at"),
    Index(None, "user_id"),
)


# Mirror of identity's proof-of-humanity state, fed by identity events (see humanity.py).
humans = Table(
    "humans",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("verified", Boolean, nullable=False),
    # occurred_at of the event that set this state: older events never overwrite it
    ts("as_of"),
    # The humanity commitment registered on chain ("" if identity did not say): an
    # on-chain vote is cast under the account that registered it.
    Column("commitment", String(80), nullable=False, server_default=""),
)


def _community(row: Row[Any], member_count: int) -> d.Community:
    return d.Community(
        id=row.id,
        name=row.name,
        description=row.description,
        rules=d.CommunityRules.from_json(row.rules),
        created_by=row.created_by,
        member_count=member_count,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _member(row: Row[Any]) -> d.Member:
    return d.Member(
        community_id=row.community_id,
        user_id=row.user_id,
        role=d.MemberRole(row.role),
        human_verified=bool(row.verified),
        joined_at=as_utc(row.joined_at),
    )


def _member_query() -> Any:
    return select(
        members,
        func.coalesce(humans.c.verified, False).label("verified"),
    ).select_from(members.outerjoin(humans, humans.c.user_id == members.c.user_id))


class CommunityStore(Store):
    async def insert_community(self, community: d.Community, request_id: str | None) -> None:
        await self.session.execute(
            insert(communities).values(
                id=community.id,
                name=community.name,
                name_key=community.name.casefold(),
                description=community.description,
                rules=community.rules.to_json(),
                created_by=community.created_by,
                request_id=request_id,
                created_at=community.created_at,
                updated_at=community.updated_at,
            )
        )

    async def community_by_request(self, user_id: str, request_id: str) -> str | None:
        return (
            await self.session.execute(
                select(communities.c.id).where(
                    communities.c.created_by == user_id, communities.c.request_id == request_id
                )
            )
        ).scalar_one_or_none()

    async def get_community(self, community_id: str, *, lock: bool = False) -> d.Community | None:
        query = select(communities).where(communities.c.id == community_id)
        if lock and self._postgres:
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        if row is None:
            return None
        return _community(row, await self.member_count(community_id))

    async def member_count(self, community_id: str) -> int:
        return int(
            (
                await self.session.execute(
                    select(func.count())
                    .select_from(members)
                    .where(members.c.community_id == community_id)
                )
            ).scalar_one()
        )

    async def list_communities(
        self, *, query: str, member_of: str | None, offset: int, limit: int
    ) -> list[d.Community]:
        counts = (
            select(members.c.community_id, func.count().label("n"))
            .group_by(members.c.community_id)
            .subquery()
        )
        stmt = select(communities, func.coalesce(counts.c.n, 0).label("n")).select_from(
            communities.outerjoin(counts, counts.c.community_id == communities.c.id)
        )
        if query:
            escaped = query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(communities.c.name_key.like(f"%{escaped}%", escape="\\"))
        if member_of is not None:
            stmt = stmt.where(
                communities.c.id.in_(
                    select(members.c.community_id).where(members.c.user_id == member_of)
                )
            )
        stmt = stmt.order_by(communities.c.name_key, communities.c.id).offset(offset).limit(limit)
        rows = (await self.session.execute(stmt)).all()
        return [_community(row, int(row.n)) for row in rows]

    async def update_rules(self, community_id: str, rules: d.CommunityRules, now: datetime) -> None:
        await self.session.execute(
            update(communities)
            .where(communities.c.id == community_id)
            .values(rules=rules.to_json(), updated_at=now)
        )

    async def get_member(self, community_id: str, user_id: str) -> d.Member | None:
        row = (
            await self.session.execute(
                _member_query().where(
                    members.c.community_id == community_id, members.c.user_id == user_id
                )
            )
        ).one_or_none()
        return None if row is None else _member(row)

    async def insert_member(
        self, community_id: str, user_id: str, role: d.MemberRole, now: datetime
    ) -> None:
        await self.session.execute(
            insert(members).values(
                community_id=community_id, user_id=user_id, role=role.value, joined_at=now
            )
        )

    async def set_role(self, community_id: str, user_id: str, role: d.MemberRole) -> None:
        await self.session.execute(
            update(members)
            .where(members.c.community_id == community_id, members.c.user_id == user_id)
            .values(role=role.value)
        )

    async def delete_member(self, community_id: str, user_id: str) -> None:
        await self.session.execute(
            delete(members).where(
                members.c.community_id == community_id, members.c.user_id == user_id
            )
        )

    async def admin_count(self, community_id: str) -> int:
        return int(
            (
                await self.session.execute(
                    select(func.count())
                    .select_from(members)
                    .where(
                        members.c.community_id == community_id,
                        members.c.role == d.MemberRole.ADMIN.value,
                    )
                )
            ).scalar_one()
        )

    async def list_members(
        self, community_id: str, role: d.MemberRole | None, offset: int, limit: int
    ) -> list[d.Member]:
        stmt = _member_query().where(members.c.community_id == community_id)
        if role is not None:
            stmt = stmt.where(members.c.role == role.value)
        stmt = stmt.order_by(members.c.joined_at, members.c.user_id).offset(offset).limit(limit)
        return [_member(row) for row in (await self.session.execute(stmt)).all()]

    async def eligible_voters(self, community_id: str) -> int:
        """Verified human members of the community now."""
        return int(
            (
                await self.session.execute(
                    select(func.count())
                    .select_from(members.join(humans, humans.c.user_id == members.c.user_id))
                    .where(members.c.community_id == community_id, humans.c.verified.is_(True))
                )
            ).scalar_one()
        )

    # humanity mirror

    async def is_verified_human(self, user_id: str) -> bool:
        value = (
            await self.session.execute(select(humans.c.verified).where(humans.c.user_id == user_id))
        ).scalar_one_or_none()
        return bool(value)

    async def human_commitment(self, user_id: str) -> str:
        """The verified human's on-chain humanity commitment ("" if none is known)."""
        value = (
            await self.session.execute(
                select(humans.c.commitment).where(
                    humans.c.user_id == user_id, humans.c.verified.is_(True)
                )
            )
        ).scalar_one_or_none()
        return str(value or "")

    async def set_human(
        self, user_id: str, verified: bool, as_of: datetime, commitment: str = ""
    ) -> bool:
        """Record identity's verdict unless a newer one is stored. True if changed. A
        verdict without a commitment keeps the one stored."""
        current = (
            await self.session.execute(select(humans).where(humans.c.user_id == user_id))
        ).one_or_none()
        if current is None:
            await self.session.execute(
                insert(humans).values(
                    user_id=user_id, verified=verified, as_of=as_of, commitment=commitment
                )
            )
            return True
        if as_utc(current.as_of) > as_of:
            return False
        values: dict[str, Any] = {"verified": verified, "as_of": as_of}
        if commitment:
            values["commitment"] = commitment
        await self.session.execute(
            update(humans).where(humans.c.user_id == user_id).values(**values)
        )
        return bool(current.verified) != verified or (
            bool(commitment) and current.commitment != commitment
        )
