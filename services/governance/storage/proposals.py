"""Proposals: the `proposals` table, creating, reading and listing them (by their status
at a given time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    or_,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from services.governance import domain as d
from services.governance.storage.common import Store, anchor_from_json, anchor_to_json, metadata, ts
from services.kit import idempotency
from services.kit.clock import as_utc

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
    ts("voting_starts_at"),
    ts("voting_ends_at"),
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
    ts("created_at"),
    ts("updated_at"),
    UniqueConstraint("author_id", "request_id"),
    Index(None, "community_id", "created_at"),
    Index(None, "status", "voting_ends_at"),
)


# An ON_CHAIN CreateProposal's request id, claimed (and committed) before the proposal is
# sent to the contract: a retry racing the first call finds the claim and waits for that
# call's proposal instead of sending a second one. Released if the send or the insert fails.
proposal_requests = Table(
    "proposal_requests",
    metadata,
    Column("author_id", String(64), primary_key=True),
    Column("request_id", String(d.MAX_REQUEST_ID_CHARS), primary_key=True),
    Column("proposal_id", String(36), nullable=False),
    ts("claimed_at"),
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
        voting_starts_at=as_utc(row.voting_starts_at),
        voting_ends_at=as_utc(row.voting_ends_at),
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
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


class ProposalStore(Store):
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

    async def claim_proposal_request(
        self, author_id: str, request_id: str, proposal_id: str, now: datetime
    ) -> None:
        """Claim the request for `proposal_id`, or raise `idempotency.Replayed` with the
        proposal id of the call holding it."""
        await idempotency.claim(
            self.session,
            proposal_requests,
            {
                "author_id": author_id,
                "request_id": request_id,
                "proposal_id": proposal_id,
                "claimed_at": now,
            },
            result="proposal_id",
        )

    async def proposal_claim(self, author_id: str, request_id: str) -> tuple[str, datetime] | None:
        """The proposal id holding the request and when it was claimed."""
        row = (
            await self.session.execute(
                select(proposal_requests.c.proposal_id, proposal_requests.c.claimed_at).where(
                    proposal_requests.c.author_id == author_id,
                    proposal_requests.c.request_id == request_id,
                )
            )
        ).one_or_none()
        return None if row is None else (row.proposal_id, as_utc(row.claimed_at))

    async def release_proposal_claim(
        self, author_id: str, request_id: str, proposal_id: str
    ) -> None:
        """Drop the claim if `proposal_id` still holds it (never another call's)."""
        await self.session.execute(
            delete(proposal_requests).where(
                proposal_requests.c.author_id == author_id,
                proposal_requests.c.request_id == request_id,
                proposal_requests.c.proposal_id == proposal_id,
            )
        )

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
