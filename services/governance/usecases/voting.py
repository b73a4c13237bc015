"""Voting: one verified human member, one vote (in the voter's own account for an
ON_CHAIN proposal); a replayed request gets its vote back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.governance import domain as d
from services.governance.storage import GovernanceRepository
from services.governance.usecases.context import (
    CHANGE_VOTE_CAST,
    TOPIC_PROPOSAL_CHANGED,
    GovernanceContext,
    ProposalView,
    object_id,
    proposal_of,
    require_member,
)
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
)


class Voting:
    def __init__(self, ctx: GovernanceContext) -> None:
        self.ctx = ctx

    async def cast_vote(
        self,
        principal: Principal,
        proposal_id: str,
        choices: Sequence[d.Choice],
        request_id: str,
    ) -> tuple[d.Vote, ProposalView]:
        """One verified human member, one vote. Replaying the same request_id returns the
        original vote; any other second vote is ALREADY_EXISTS (the votes primary key is
        the final guarantee, whatever the interleaving)."""
        proposal_id = object_id(proposal_id, "proposal_id", "proposal")
        rid = d.request_id_of(request_id)
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id)
            existing = await repo.get_vote(proposal_id, principal.user_id)
            if existing is None:
                await require_member(repo, principal, proposal.community_id)
        if existing is not None:
            return await self._replayed(existing, rid)
        # Outside any transaction: the check may read through its own connection.
        if not await self.ctx.humanity.is_verified_human(principal.user_id):
            raise FailedPrecondition(
                "only verified humans vote: register your proof of humanity first"
            )
        tx_hash = ""
        if proposal.voting_mode is d.VotingMode.ON_CHAIN:
            tx_hash = await self._cast_on_chain(principal, proposal_id, choices, rid)
        replay: d.Vote | None = None
        try:
            async with self.ctx.db.transaction() as session:
                repo = GovernanceRepository(session)
                proposal = await proposal_of(repo, proposal_id)
                replay = await repo.get_vote(proposal_id, principal.user_id)
                if replay is None:
                    member = await require_member(repo, principal, proposal.community_id)
                    if member.joined_at > proposal.voting_starts_at:
                        # Eligibility is fixed when voting opens (no joining to swing a vote).
                        raise PermissionDenied(
                            "only members who joined before voting opened may vote on it"
                        )
                    now = self.ctx.clock.now()
                    if not proposal.voting_open(now):
                        raise FailedPrecondition(self._closed_reason(proposal, now))
                    ballot = d.validate_ballot(
                        proposal.voting_method,
                        len(proposal.options),
                        choices,
                        proposal.quadratic_credit_budget,
                    )
                    vote = d.Vote(proposal_id, principal.user_id, ballot, now, rid, tx_hash)
                    await repo.insert_vote(vote)
                    if proposal.status is d.ProposalStatus.PENDING:
                        proposal = await self.ctx.activate(repo, session, proposal)
                    await self.ctx.emit(
                        session,
                        TOPIC_PROPOSAL_CHANGED,
                        proposal_id,
                        change=CHANGE_VOTE_CAST,
                        proposal_id=proposal_id,
                        community_id=proposal.community_id,
                        voter_id=principal.user_id,
                    )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            # A concurrent request of the same voter won the primary key.
            async with self.ctx.db.session() as session:
                replay = await GovernanceRepository(session).get_vote(
                    proposal_id, principal.user_id
                )
            if replay is None:
                raise
        if replay is not None:
            return await self._replayed(replay, rid)
        self.ctx.notify()
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            view = await self.ctx.view(repo, await proposal_of(repo, proposal_id))
        return vote, view

    async def _cast_on_chain(
        self,
        principal: Principal,
        proposal_id: str,
        choices: Sequence[d.Choice],
        rid: str | None,
    ) -> str:
        """An ON_CHAIN proposal's vote goes to the governance contract first, signed by the
        voter's own account (the one their humanity is registered from), after the same
        checks the vote's insert makes again; the insert then records it with its
        transaction. A retry after a lost answer gets the vote's transaction back."""
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id)
            member = await require_member(repo, principal, proposal.community_id)
            if member.joined_at > proposal.voting_starts_at:
                raise PermissionDenied(
                    "only members who joined before voting opened may vote on it"
                )
            now = self.ctx.clock.now()
            if not proposal.voting_open(now):
                raise FailedPrecondition(self._closed_reason(proposal, now))
            ballot = d.validate_ballot(
                proposal.voting_method,
                len(proposal.options),
                choices,
                proposal.quadratic_credit_budget,
            )
            commitment = await repo.human_commitment(principal.user_id)
        if not commitment:
            raise FailedPrecondition(
                "your proof of humanity is not registered on chain yet: on-chain votes are "
                "cast from the account that registered it"
            )
        if self.ctx.onchain is None or not proposal.onchain_proposal_id:
            raise FailedPrecondition("on-chain voting is not available in this deployment")
        return await self.ctx.onchain.cast_vote(
            proposal.onchain_proposal_id,
            commitment,
            ballot[0].option_index,
            rid or f"{proposal_id}:{principal.user_id}",
        )

    async def _replayed(self, existing: d.Vote, rid: str | None) -> tuple[d.Vote, ProposalView]:
        if rid is None or existing.request_id != rid:
            raise AlreadyExists("you have already voted on this proposal")
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            view = await self.ctx.view(repo, await proposal_of(repo, existing.proposal_id))
        return existing, view

    @staticmethod
    def _closed_reason(proposal: d.Proposal, now: datetime) -> str:
        status = proposal.status_at(now)
        if not status.open:
            return f"proposal is {status.value}: voting is closed"
        if now < proposal.voting_starts_at:
            return f"voting opens at {proposal.voting_starts_at.isoformat()}"
        return f"voting closed at {proposal.voting_ends_at.isoformat()}"
