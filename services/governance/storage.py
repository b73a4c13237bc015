"""Governance persistence: tables in the `governance` schema and the repository over them.

The one-human-one-vote rule is the primary key of `votes` (proposal_id, voter_id): the
database refuses a second ballot whatever the application does. Tallies are computed
from the stored ballots (never from counters), so concurrent votes cannot lose updates.

Every datetime is written as UTC; SQLite returns naive values, read back as UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.governance import domain as d
from services.kit.db import NAMING_CONVENTION
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table

metadata = MetaData(schema="governance", naming_convention=NAMING_CONVENTION)


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


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
    _ts("created_at"),
    _ts("updated_at"),
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
    _ts("joined_at"),
    Index(None, "user_id"),
)

# Mirror of identity's proof-of-humanity state, fed by identity events (see humanity.py).
humans = Table(
    "humans",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("verified", Boolean, nullable=False),
    # occurred_at of the event that set this state: older events never overwrite it
    _ts("as_of"),
    # The humanity commitment registered on chain ("" if identity did not say): an
    # on-chain vote is cast under the account that registered it.
    Column("commitment", String(80), nullable=False, server_default=""),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "community_id",
        String(36),
        ForeignKey("communities.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("author_id", String(64), nullable=False),
    Column("request_id", String(d.MAX_REQUEST_ID_CHARS), nullable=True),
    Column("title", String(d.MAX_TITLE_CHARS), nullable=False),
    Column("body", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("options", JSON, nullable=False),
    Column("yes_no", Boolean, nullable=False),
    Column("change", JSON, nullable=True),
    _ts("voting_starts_at"),
    _ts("voting_ends_at"),
    Column("voting_method", String(32), nullable=False),
    Column("voting_mode", String(32), nullable=False),
    Column("quorum_bps", Integer, nullable=False),
    Column("approval_threshold_bps", Integer, nullable=False),
    Column("quadratic_credit_budget", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # verified human members when voting opened; NULL until then
    Column("eligible_voters", Integer, nullable=True),
    Column("final_tally", JSON, nullable=True),
    Column("tally_digest", String(64), nullable=False, default=""),
    Column("ballots_digest", String(64), nullable=False, default=""),
    Column("onchain_proposal_id", String(80), nullable=False, default=""),
    Column("anchor", JSON, nullable=False),
    Column("cancel_reason", String(d.MAX_REASON_CHARS), nullable=False, default=""),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("author_id", "request_id"),
    Index(None, "community_id", "created_at"),
    Index(None, "status", "voting_ends_at"),
)

votes = Table(
    "votes",
    metadata,
    Column(
        "proposal_id",
        String(36),
        ForeignKey("proposals.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # One human, one vote: the primary key refuses a second ballot by the same member.
    Column("voter_id", String(64), primary_key=True),
    Column("choices", JSON, nullable=False),
    Column("request_id", String(d.MAX_REQUEST_ID_CHARS), nullable=True),
    Column("tx_hash", String(80), nullable=False, default=""),
    _ts("cast_at"),
)

standards = Table(
    "standards",
    metadata,
    Column("community_id", String(36), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content", Text, nullable=False),
    Column("content_type", String(d.MAX_CONTENT_TYPE_CHARS), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("proposal_id", String(36), nullable=True),
    _ts("adopted_at"),
    Column("anchor", JSON, nullable=False),
    ForeignKeyConstraint(["community_id"], ["communities.id"], ondelete="CASCADE"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)


# -- row mapping ----------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_aware(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def anchor_to_json(anchor: d.Anchor) -> dict[str, Any]:
    return {
        "status": anchor.status.value,
        "tx_hash": anchor.tx_hash,
        "block_number": anchor.block_number,
        "batch_id": anchor.batch_id,
        "merkle_root": anchor.merkle_root,
        "failure_reason": anchor.failure_reason,
        "anchored_at": anchor.anchored_at.isoformat() if anchor.anchored_at else None,
    }


def anchor_from_json(data: dict[str, Any]) -> d.Anchor:
    anchored_at = data.get("anchored_at")
    return d.Anchor(
        status=d.AnchorStatus(data.get("status", "none")),
        tx_hash=data.get("tx_hash", ""),
        block_number=int(data.get("block_number", 0)),
        batch_id=data.get("batch_id", ""),
        merkle_root=data.get("merkle_root", ""),
        failure_reason=data.get("failure_reason", ""),
        anchored_at=datetime.fromisoformat(anchored_at) if anchored_at else None,
    )


def _community(row: Row[Any], member_count: int) -> d.Community:
    return d.Community(
        id=row.id,
        name=row.name,
        description=row.description,
        rules=d.CommunityRules.from_json(row.rules),
        created_by=row.created_by,
        member_count=member_count,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _member(row: Row[Any]) -> d.Member:
    return d.Member(
        community_id=row.community_id,
        user_id=row.user_id,
        role=d.MemberRole(row.role),
        human_verified=bool(row.verified),
        joined_at=_aware(row.joined_at),
    )


def _proposal(row: Row[Any]) -> d.Proposal:
    kind = d.ProposalKind(row.kind)
    change = row.change
    return d.Proposal(
        id=row.id,
        community_id=row.community_id,
        author_id=row.author_id,
        title=row.title,
        body=row.body,
        kind=kind,
        options=tuple(d.ProposalOption(int(i), label, desc) for i, label, desc in row.options),
        yes_no=bool(row.yes_no),
        standards_change=(
            d.StandardsChange.from_json(change)
            if change and kind is d.ProposalKind.STANDARDS_CHANGE
            else None
        ),
        rules_change=(
            d.CommunityRules.from_json(change)
            if change and kind is d.ProposalKind.RULES_CHANGE
            else None
        ),
        voting_starts_at=_aware(row.voting_starts_at),
        voting_ends_at=_aware(row.voting_ends_at),
        voting_method=d.VotingMethod(row.voting_method),
        voting_mode=d.VotingMode(row.voting_mode),
        quorum_bps=row.quorum_bps,
        approval_threshold_bps=row.approval_threshold_bps,
        quadratic_credit_budget=row.quadratic_credit_budget,
        status=d.ProposalStatus(row.status),
        eligible_voters=row.eligible_voters,
        final_tally=d.Tally.from_json(row.final_tally) if row.final_tally else None,
        tally_digest=row.tally_digest,
        ballots_digest=row.ballots_digest,
        onchain_proposal_id=row.onchain_proposal_id,
        anchor=anchor_from_json(row.anchor),
        cancel_reason=row.cancel_reason,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _vote(row: Row[Any]) -> d.Vote:
    return d.Vote(
        proposal_id=row.proposal_id,
        voter_id=row.voter_id,
        choices=d.choices_from_json(row.choices),
        cast_at=_aware(row.cast_at),
        request_id=row.request_id,
        tx_hash=row.tx_hash,
    )


def _standards(row: Row[Any]) -> d.StandardsDocument:
    return d.StandardsDocument(
        community_id=row.community_id,
        kind=d.StandardsKind(row.kind),
        version=row.version,
        content=row.content,
        content_type=row.content_type,
        content_hash=row.content_hash,
        proposal_id=row.proposal_id or "",
        adopted_at=_aware(row.adopted_at),
    )


def _member_query() -> Any:
    return select(
        members,
        func.coalesce(humans.c.verified, False).label("verified"),
    ).select_from(members.outerjoin(humans, humans.c.user_id == members.c.user_id))


# -- repository -------------------------------------------------------------------------------


class GovernanceRepository:
    """Queries and writes on one session (the caller owns the transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # communities

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

    # members

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
        if _aware(current.as_of) > as_of:
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

    # proposals

    async def insert_proposal(self, p: d.Proposal, request_id: str | None) -> None:
        change: dict[str, Any] | None = None
        if p.standards_change is not None:
            change = p.standards_change.to_json()
        elif p.rules_change is not None:
            change = p.rules_change.to_json()
        await self.session.execute(
            insert(proposals).values(
                id=p.id,
                community_id=p.community_id,
                author_id=p.author_id,
                request_id=request_id,
                title=p.title,
                body=p.body,
                kind=p.kind.value,
                options=[[o.index, o.label, o.description] for o in p.options],
                yes_no=p.yes_no,
                change=change,
                voting_starts_at=p.voting_starts_at,
                voting_ends_at=p.voting_ends_at,
                voting_method=p.voting_method.value,
                voting_mode=p.voting_mode.value,
                quorum_bps=p.quorum_bps,
                approval_threshold_bps=p.approval_threshold_bps,
                quadratic_credit_budget=p.quadratic_credit_budget,
                status=p.status.value,
                eligible_voters=p.eligible_voters,
                final_tally=None,
                tally_digest="",
                ballots_digest="",
                onchain_proposal_id=p.onchain_proposal_id,
                anchor=anchor_to_json(p.anchor),
                cancel_reason="",
                created_at=p.created_at,
                updated_at=p.updated_at,
            )
        )

    async def proposal_by_request(self, author_id: str, request_id: str) -> str | None:
        return (
            await self.session.execute(
                select(proposals.c.id).where(
                    proposals.c.author_id == author_id, proposals.c.request_id == request_id
                )
            )
        ).scalar_one_or_none()

    async def get_proposal(self, proposal_id: str, *, lock: bool = False) -> d.Proposal | None:
        query = select(proposals).where(proposals.c.id == proposal_id)
        if lock and self._postgres:
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else _proposal(row)

    async def list_proposals(
        self,
        community_id: str,
        statuses: Sequence[d.ProposalStatus],
        now: datetime,
        offset: int,
        limit: int,
    ) -> list[d.Proposal]:
        stmt = select(proposals).where(proposals.c.community_id == community_id)
        if statuses:
            # Filter on the status at `now`: a stored PENDING whose window opened is ACTIVE.
            wanted = {s.value for s in statuses}
            conditions: list[ColumnElement[bool]] = []
            stored = wanted - {d.ProposalStatus.PENDING.value, d.ProposalStatus.ACTIVE.value}
            if stored:
                conditions.append(proposals.c.status.in_(sorted(stored)))
            if d.ProposalStatus.ACTIVE.value in wanted:
                conditions.append(proposals.c.status == d.ProposalStatus.ACTIVE.value)
                conditions.append(
                    and_(
                        proposals.c.status == d.ProposalStatus.PENDING.value,
                        proposals.c.voting_starts_at <= now,
                    )
                )
            if d.ProposalStatus.PENDING.value in wanted:
                conditions.append(
                    and_(
                        proposals.c.status == d.ProposalStatus.PENDING.value,
                        proposals.c.voting_starts_at > now,
                    )
                )
            stmt = stmt.where(or_(*conditions))
        stmt = (
            stmt.order_by(proposals.c.created_at.desc(), proposals.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_proposal(row) for row in (await self.session.execute(stmt)).all()]

    async def due_for_activation(self, now: datetime, limit: int) -> list[str]:
        rows = await self.session.execute(
            select(proposals.c.id)
            .where(
                proposals.c.status == d.ProposalStatus.PENDING.value,
                proposals.c.voting_starts_at <= now,
            )
            .order_by(proposals.c.voting_starts_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def due_for_finalization(self, now: datetime, limit: int) -> list[str]:
        rows = await self.session.execute(
            select(proposals.c.id)
            .where(
                proposals.c.status.in_(
                    [d.ProposalStatus.PENDING.value, d.ProposalStatus.ACTIVE.value]
                ),
                proposals.c.voting_ends_at <= now,
            )
            .order_by(proposals.c.voting_ends_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def update_proposal(self, proposal_id: str, **values: Any) -> None:
        if "anchor" in values and isinstance(values["anchor"], d.Anchor):
            values["anchor"] = anchor_to_json(values["anchor"])
        if "status" in values and isinstance(values["status"], d.ProposalStatus):
            values["status"] = values["status"].value
        await self.session.execute(
            update(proposals).where(proposals.c.id == proposal_id).values(**values)
        )

    # votes

    async def insert_vote(self, vote: d.Vote) -> None:
        await self.session.execute(
            insert(votes).values(
                proposal_id=vote.proposal_id,
                voter_id=vote.voter_id,
                choices=d.choices_to_json(vote.choices),
                request_id=vote.request_id,
                tx_hash=vote.tx_hash,
                cast_at=vote.cast_at,
            )
        )

    async def get_vote(self, proposal_id: str, voter_id: str) -> d.Vote | None:
        row = (
            await self.session.execute(
                select(votes).where(
                    votes.c.proposal_id == proposal_id, votes.c.voter_id == voter_id
                )
            )
        ).one_or_none()
        return None if row is None else _vote(row)

    async def ballots(self, proposal_id: str) -> list[d.Ballot]:
        rows = await self.session.execute(
            select(votes.c.voter_id, votes.c.choices)
            .where(votes.c.proposal_id == proposal_id)
            .order_by(votes.c.voter_id)
        )
        return [d.Ballot(r.voter_id, d.choices_from_json(r.choices)) for r in rows]

    # standards

    async def latest_standards_version(self, community_id: str, kind: d.StandardsKind) -> int:
        value = (
            await self.session.execute(
                select(func.max(standards.c.version)).where(
                    standards.c.community_id == community_id, standards.c.kind == kind.value
                )
            )
        ).scalar_one_or_none()
        return int(value or 0)

    async def insert_standards(self, doc: d.StandardsDocument) -> None:
        await self.session.execute(
            insert(standards).values(
                community_id=doc.community_id,
                kind=doc.kind.value,
                version=doc.version,
                content=doc.content,
                content_type=doc.content_type,
                content_hash=doc.content_hash,
                proposal_id=doc.proposal_id or None,
                adopted_at=doc.adopted_at,
                anchor=anchor_to_json(d.Anchor()),
            )
        )

    async def get_standards(
        self, community_id: str, kind: d.StandardsKind, version: int
    ) -> d.StandardsDocument | None:
        stmt = select(standards).where(
            standards.c.community_id == community_id, standards.c.kind == kind.value
        )
        if version:
            stmt = stmt.where(standards.c.version == version)
        else:
            stmt = stmt.order_by(standards.c.version.desc()).limit(1)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else _standards(row)

    async def list_standards(
        self, community_id: str, kind: d.StandardsKind, offset: int, limit: int
    ) -> list[d.StandardsDocument]:
        rows = await self.session.execute(
            select(standards)
            .where(standards.c.community_id == community_id, standards.c.kind == kind.value)
            .order_by(standards.c.version.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_standards(r) for r in rows]
