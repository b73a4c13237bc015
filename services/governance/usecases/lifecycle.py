"""A proposal's life after voting: finalizing (the result and its digests, anchored),
cancelling, executing (adopting standards or rules), and the background step that opens
and closes voting windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.governance import domain as d
from services.governance.onchain import ChainResult
from services.governance.storage import GovernanceRepository
from services.governance.usecases.context import (
    CHANGE_STATUS,
    TOPIC_EXECUTED,
    TOPIC_FINALIZED,
    TOPIC_PROPOSAL_CHANGED,
    TOPIC_STANDARDS_ADOPTED,
    Executed,
    GovernanceContext,
    ProposalView,
    community_of,
    object_id,
    proposal_of,
    require_member,
    require_reader,
)
from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    PermissionDenied,
)
from services.kit.logging import get_logger

log = get_logger(__name__)


class Lifecycle:
    def __init__(self, ctx: GovernanceContext) -> None:
        self.ctx = ctx

    async def finalize_proposal(self, principal: Principal, proposal_id: str) -> ProposalView:
        """Anyone who may read the proposal may finalize it once its window has ended;
        finalizing again returns the recorded result."""
        proposal_id = object_id(proposal_id, "proposal_id", "proposal")
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id)
            await require_reader(repo, principal, proposal.community_id)
        return await self._finalize(proposal_id)

    async def _finalize(self, proposal_id: str) -> ProposalView:
        chain_result = await self._finalize_on_chain(proposal_id)
        changed = False
        async with self.ctx.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id, lock=True)
            now = self.ctx.clock.now()
            if proposal.status is d.ProposalStatus.CANCELED:
                raise FailedPrecondition("proposal is canceled: there is no result")
            if not proposal.status.finalized:
                if now < proposal.voting_ends_at:
                    raise FailedPrecondition(
                        f"voting is open until {proposal.voting_ends_at.isoformat()}"
                    )
                if proposal.status is d.ProposalStatus.PENDING:
                    proposal = await self.ctx.activate(repo, session, proposal)
                proposal = await self._record_result(repo, session, proposal, now, chain_result)
                changed = True
            view = await self.ctx.view(repo, proposal)
        if changed:
            self.ctx.notify()
        return view

    async def _finalize_on_chain(self, proposal_id: str) -> ChainResult | None:
        """ON_CHAIN proposals whose window ended: finalize in the contract (or find it
        finalized) and read the totals back. None for off-chain proposals."""
        async with self.ctx.db.session() as session:
            proposal = await proposal_of(GovernanceRepository(session), proposal_id)
        if (
            proposal.voting_mode is not d.VotingMode.ON_CHAIN
            or not proposal.status.open
            or self.ctx.clock.now() < proposal.voting_ends_at
        ):
            return None
        if self.ctx.onchain is None or not proposal.onchain_proposal_id:
            raise FailedPrecondition("on-chain voting is not available in this deployment")
        return await self.ctx.onchain.finalize(proposal.onchain_proposal_id, len(proposal.options))

    async def _record_result(
        self,
        repo: GovernanceRepository,
        session: AsyncSession,
        proposal: d.Proposal,
        now: datetime,
        chain_result: ChainResult | None = None,
    ) -> d.Proposal:
        ballots = await repo.ballots(proposal.id)
        eligible = proposal.eligible_voters
        if eligible is None:
            eligible = await repo.eligible_voters(proposal.community_id)
        if proposal.voting_mode is d.VotingMode.ON_CHAIN:
            if chain_result is None:
                raise FailedPrecondition("the on-chain result could not be read: retry")
            # The chain's count is the tally; the finalize transaction is the anchor.
            tally = d.tally_from_counts(
                chain_result.votes,
                chain_result.total_votes,
                eligible_voters=eligible,
                quorum_bps=proposal.quorum_bps,
                approval_threshold_bps=proposal.approval_threshold_bps,
                yes_no=proposal.yes_no,
            )
        else:
            tally = d.compute_tally(
                proposal.voting_method,
                len(proposal.options),
                ballots,
                eligible_voters=eligible,
                quorum_bps=proposal.quorum_bps,
                approval_threshold_bps=proposal.approval_threshold_bps,
                yes_no=proposal.yes_no,
            )
        target = d.ProposalStatus.SUCCEEDED if tally.passed else d.ProposalStatus.DEFEATED
        status = d.transition(proposal.status, target)
        # On chain the ballots are the contract's; off chain their digest is anchored.
        ballots_sha = d.ballots_digest(proposal.id, ballots) if chain_result is None else ""
        result = d.canonical_result(
            proposal_id=proposal.id,
            community_id=proposal.community_id,
            method=proposal.voting_method,
            quorum_bps=proposal.quorum_bps,
            approval_threshold_bps=proposal.approval_threshold_bps,
            status=status,
            tally=tally,
            ballots_sha256=ballots_sha,
        )
        digest = d.tally_digest(result)
        if chain_result is not None:
            anchor = d.Anchor(
                status=d.AnchorStatus.ANCHORED,
                tx_hash=chain_result.tx_hash,
                block_number=chain_result.block_number,
                anchored_at=now,
            )
        else:
            # Off-chain results are anchored by the chain translator from the event below.
            anchor = d.Anchor(status=d.AnchorStatus.PENDING)
        await repo.update_proposal(
            proposal.id,
            status=status,
            eligible_voters=eligible,
            final_tally=tally.to_json(),
            tally_digest=digest,
            ballots_digest=ballots_sha,
            anchor=anchor,
            updated_at=now,
        )
        await self.ctx.emit(
            session,
            TOPIC_FINALIZED,
            proposal.id,
            proposal_id=proposal.id,
            community_id=proposal.community_id,
            status=status.value,
            tally_digest=digest,
            ballots_digest=ballots_sha,
            result=result,
        )
        await self.ctx.emit(
            session,
            TOPIC_PROPOSAL_CHANGED,
            proposal.id,
            change=CHANGE_STATUS,
            proposal_id=proposal.id,
            community_id=proposal.community_id,
            status=status.value,
        )
        log.info("governance.proposal_finalized", proposal_id=proposal.id, status=status.value)
        return replace(
            proposal,
            status=status,
            eligible_voters=eligible,
            final_tally=tally,
            tally_digest=digest,
            ballots_digest=ballots_sha,
            anchor=anchor,
            updated_at=now,
        )

    async def cancel_proposal(
        self, principal: Principal, proposal_id: str, reason: str
    ) -> ProposalView:
        proposal_id = object_id(proposal_id, "proposal_id", "proposal")
        reason = d.bounded_text(reason.strip(), "reason", d.MAX_REASON_CHARS)
        async with self.ctx.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id, lock=True)
            member = await repo.get_member(proposal.community_id, principal.user_id)
            is_author = proposal.author_id == principal.user_id
            moderates = member is not None and member.role.at_least(d.MemberRole.MODERATOR)
            if not (is_author and member is not None) and not moderates:
                raise PermissionDenied(
                    "only the author or a moderator of the community may cancel a proposal"
                )
            now = self.ctx.clock.now()
            if proposal.status is d.ProposalStatus.CANCELED:
                return await self.ctx.view(repo, proposal)  # a retried cancel
            status = d.transition(proposal.status, d.ProposalStatus.CANCELED)
            if now >= proposal.voting_ends_at:
                raise FailedPrecondition("voting has ended: the proposal can only be finalized")
            await repo.update_proposal(
                proposal_id, status=status, cancel_reason=reason, updated_at=now
            )
            await self.ctx.emit(
                session,
                TOPIC_PROPOSAL_CHANGED,
                proposal_id,
                change=CHANGE_STATUS,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                status=status.value,
            )
            view = await self.ctx.view(
                repo, replace(proposal, status=status, cancel_reason=reason, updated_at=now)
            )
        self.ctx.notify()
        return view

    async def execute_proposal(self, principal: Principal, proposal_id: str) -> Executed:
        """Any member applies a SUCCEEDED proposal: the community decided, executing only
        carries the decision out. Executing again returns the recorded execution."""
        proposal_id = object_id(proposal_id, "proposal_id", "proposal")
        async with self.ctx.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id, lock=True)
            await community_of(repo, proposal.community_id, lock=True)
            await require_member(repo, principal, proposal.community_id)
            adopted: d.StandardsDocument | None = None
            if proposal.status is d.ProposalStatus.EXECUTED:
                if proposal.standards_change is not None:
                    adopted = await self._adopted_by(repo, proposal)
                return Executed(await self.ctx.view(repo, proposal), adopted)
            if proposal.status.open:
                raise FailedPrecondition(
                    "proposal is not finalized: finalize it after its voting window ends"
                )
            status = d.transition(proposal.status, d.ProposalStatus.EXECUTED)
            now = self.ctx.clock.now()
            if proposal.standards_change is not None:
                change = proposal.standards_change
                version = await repo.latest_standards_version(proposal.community_id, change.kind)
                adopted = d.StandardsDocument(
                    community_id=proposal.community_id,
                    kind=change.kind,
                    version=version + 1,
                    content=change.content,
                    content_type=change.content_type,
                    content_hash=d.content_hash(change.content),
                    proposal_id=proposal.id,
                    adopted_at=now,
                )
                await repo.insert_standards(adopted)
                await self.ctx.emit(
                    session,
                    TOPIC_STANDARDS_ADOPTED,
                    proposal.community_id,
                    community_id=proposal.community_id,
                    kind=adopted.kind.value,
                    version=adopted.version,
                    content_hash=adopted.content_hash,
                    proposal_id=proposal.id,
                )
            if proposal.rules_change is not None:
                await repo.update_rules(proposal.community_id, proposal.rules_change, now)
            await repo.update_proposal(proposal_id, status=status, updated_at=now)
            await self.ctx.emit(
                session,
                TOPIC_EXECUTED,
                proposal_id,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                kind=proposal.kind.value,
            )
            await self.ctx.emit(
                session,
                TOPIC_PROPOSAL_CHANGED,
                proposal_id,
                change=CHANGE_STATUS,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                status=status.value,
            )
            view = await self.ctx.view(repo, replace(proposal, status=status, updated_at=now))
        self.ctx.notify()
        return Executed(view, adopted)

    @staticmethod
    async def _adopted_by(
        repo: GovernanceRepository, proposal: d.Proposal
    ) -> d.StandardsDocument | None:
        assert proposal.standards_change is not None
        kind = proposal.standards_change.kind
        latest = await repo.latest_standards_version(proposal.community_id, kind)
        for version in range(latest, 0, -1):
            doc = await repo.get_standards(proposal.community_id, kind, version)
            if doc is not None and doc.proposal_id == proposal.id:
                return doc
        return None

    async def advance(self, limit: int = 100) -> int:
        """Background step: persist PENDING -> ACTIVE for windows that opened and finalize
        proposals whose window ended. Returns how many proposals changed."""
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            to_activate = await repo.due_for_activation(now, limit)
            to_finalize = await repo.due_for_finalization(now, limit)
        changed = 0
        for proposal_id in to_activate:
            if proposal_id in to_finalize:
                continue
            async with self.ctx.db.transaction() as session:
                repo = GovernanceRepository(session)
                proposal = await proposal_of(repo, proposal_id, lock=True)
                if proposal.status is d.ProposalStatus.PENDING:
                    await self.ctx.activate(repo, session, proposal)
                    changed += 1
        for proposal_id in to_finalize:
            try:
                await self._finalize(proposal_id)
                changed += 1
            except FailedPrecondition:
                continue  # canceled meanwhile
            except Exception:
                # One broken proposal must not hold up the others; retried next round.
                log.exception("governance.finalize_failed", proposal_id=proposal_id)
        if changed:
            self.ctx.notify()
        return changed
