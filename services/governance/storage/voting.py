"""Votes: one row a voter and proposal. The one-human-one-vote rule is the primary key of
`votes` (proposal_id, voter_id): the database refuses a second ballot whatever the
application does. Tallies are computed from the stored ballots (never from counters), so
concurrent votes cannot lose updates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String, Table, insert, select
from sqlalchemy.engine import Row

from services.governance import domain as d
from services.governance.storage.common import Store, metadata, ts
from services.kit.clock import as_utc

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
    ts("cast_at"),
)


def _vote(row: Row[Any]) -> d.Vote:
    return d.Vote(
        proposal_id=row.proposal_id,
        voter_id=row.voter_id,
        choices=d.choices_from_json(row.choices),
        cast_at=as_utc(row.cast_at),
        request_id=row.request_id,
        tx_hash=row.tx_hash,
    )


class VotingStore(Store):
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
