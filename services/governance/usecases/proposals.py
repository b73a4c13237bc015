"""Proposals: creating one (in the contract first for an ON_CHAIN community), reading,
listing, the tally, and who may watch one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.governance import domain as d
from services.governance.onchain import ChainProposal, metadata_hash, quorum_votes
from services.governance.storage import GovernanceRepository
from services.governance.usecases.context import (
    CHANGE_STATUS,
    TOPIC_PROPOSAL_CHANGED,
    GovernanceContext,
    NewProposal,
    ProposalView,
    community_of,
    new_id,
    object_id,
    proposal_of,
    require_member,
    require_reader,
)
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    FailedPrecondition,
    PermissionDenied,
    ValidationError,
)
from services.kit.paging import Page, page_size


class Proposals:
    def __init__(self, ctx: GovernanceContext) -> None:
        self.ctx = ctx

    async def create_proposal(self, principal: Principal, new: NewProposal) -> ProposalView:
        community_id = object_id(new.community_id, "community_id", "community")
        title = d.required_text(new.title, "title", d.MAX_TITLE_CHARS)
        body = d.bounded_text(new.body, "body", d.MAX_BODY_CHARS)
        if new.kind is None:
            raise ValidationError("kind", "is required")
        options, yes_no = d.validate_options(new.options)
        standards_change: d.StandardsChange | None = None
        rules_change: d.CommunityRules | None = None
        if new.kind is d.ProposalKind.GENERAL:
            if new.standards_change is not None or new.rules_change is not None:
                raise ValidationError("change", "a GENERAL proposal carries no change")
        elif new.kind is d.ProposalKind.STANDARDS_CHANGE:
            if new.standards_change is None:
                raise ValidationError(
                    "standards_change", "is required for a STANDARDS_CHANGE proposal"
                )
            standards_change = d.validate_standards_change(new.standards_change, "standards_change")
        else:
            if new.rules_change is None:
                raise ValidationError("rules_change", "is required for a RULES_CHANGE proposal")
            rules_change = d.validate_rules(new.rules_change, "rules_change")
            self.ctx.require_mode_available(rules_change.voting_mode, "rules_change.voting_mode")
        if new.kind is not d.ProposalKind.GENERAL and not yes_no:
            raise ValidationError(
                "options", "a change proposal is voted For/Against/Abstain: leave options empty"
            )
        rid = d.request_id_of(new.request_id)
        if rid is not None:
            replay = await self._proposal_by_request(principal, rid)
            if replay is not None:
                return replay
        now = self.ctx.clock.now()
        proposal_id = new_id()
        chain_proposal = await self._create_on_chain(
            principal, proposal_id, community_id, new, title, body, options, now
        )
        try:
            async with self.ctx.db.transaction() as session:
                repo = GovernanceRepository(session)
                community = await community_of(repo, community_id)
                member = await require_member(repo, principal, community_id)
                rules = community.rules
                if chain_proposal is not None:
                    rules = replace(rules, voting_mode=d.VotingMode.ON_CHAIN)
                if not member.role.at_least(rules.proposer_role):
                    raise PermissionDenied(
                        f"creating proposals needs the {rules.proposer_role.value} role"
                    )
                window = d.voting_window(
                    now, new.voting_starts_at, new.voting_ends_at, rules.default_voting_period
                )
                if rules.voting_mode is d.VotingMode.ON_CHAIN and chain_proposal is None:
                    raise FailedPrecondition("the community switched to on-chain voting: retry")
                starts_now = window.starts_at <= now
                proposal = d.Proposal(
                    id=proposal_id,
                    community_id=community_id,
                    author_id=principal.user_id,
                    title=title,
                    body=body,
                    kind=new.kind,
                    options=options,
                    yes_no=yes_no,
                    standards_change=standards_change,
                    rules_change=rules_change,
                    voting_starts_at=window.starts_at,
                    voting_ends_at=window.ends_at,
                    voting_method=rules.voting_method,
                    voting_mode=rules.voting_mode,
                    quorum_bps=rules.quorum_bps,
                    approval_threshold_bps=rules.approval_threshold_bps,
                    quadratic_credit_budget=rules.quadratic_credit_budget,
                    status=d.ProposalStatus.ACTIVE if starts_now else d.ProposalStatus.PENDING,
                    eligible_voters=(
                        await repo.eligible_voters(community_id) if starts_now else None
                    ),
                    final_tally=None,
                    tally_digest="",
                    ballots_digest="",
                    onchain_proposal_id=chain_proposal.onchain_id if chain_proposal else "",
                    anchor=d.Anchor(),
                    cancel_reason="",
                    created_at=now,
                    updated_at=now,
                )
                await repo.insert_proposal(proposal, rid)
                await self.ctx.emit(
                    session,
                    TOPIC_PROPOSAL_CHANGED,
                    proposal.id,
                    change=CHANGE_STATUS,
                    proposal_id=proposal.id,
                    community_id=community_id,
                    status=proposal.status.value,
                )
                view = await self.ctx.view(repo, proposal)
        except IntegrityError as exc:
            if not is_unique_violation(exc) or rid is None:
                raise
            replay = await self._proposal_by_request(principal, rid)
            if replay is None:
                raise
            return replay
        self.ctx.notify()
        return view

    async def _create_on_chain(
        self,
        principal: Principal,
        proposal_id: str,
        community_id: str,
        new: NewProposal,
        title: str,
        body: str,
        options: Sequence[d.ProposalOption],
        now: datetime,
    ) -> ChainProposal | None:
        """For an ON_CHAIN community: authorize, then create the proposal in the governance
        contract (before the database insert, so no row ever lacks its chain twin)."""
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            community = await community_of(repo, community_id)
            rules = community.rules
            if rules.voting_mode is not d.VotingMode.ON_CHAIN:
                return None
            member = await require_member(repo, principal, community_id)
            if not member.role.at_least(rules.proposer_role):
                raise PermissionDenied(
                    f"creating proposals needs the {rules.proposer_role.value} role"
                )
            eligible = await repo.eligible_voters(community_id)
        self.ctx.require_mode_available(rules.voting_mode, "rules.voting_mode")
        assert self.ctx.onchain is not None
        window = d.voting_window(
            now, new.voting_starts_at, new.voting_ends_at, rules.default_voting_period
        )
        return await self.ctx.onchain.create_proposal(
            metadata_hash=metadata_hash(proposal_id, title, body, [o.label for o in options]),
            options_count=len(options),
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            quorum_votes=quorum_votes(rules.quorum_bps, eligible),
        )

    async def _proposal_by_request(self, principal: Principal, rid: str) -> ProposalView | None:
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            found = await repo.proposal_by_request(principal.user_id, rid)
            if found is None:
                return None
            return await self.ctx.view(repo, await proposal_of(repo, found))

    async def get_proposal(
        self, principal: Principal, proposal_id: str
    ) -> tuple[ProposalView, d.Vote | None]:
        proposal_id = object_id(proposal_id, "proposal_id", "proposal")
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await proposal_of(repo, proposal_id)
            await require_reader(repo, principal, proposal.community_id)
            return (
                await self.ctx.view(repo, proposal, read_chain=True),
                await repo.get_vote(proposal_id, principal.user_id),
            )

    async def list_proposals(
        self,
        principal: Principal,
        community_id: str,
        statuses: Sequence[d.ProposalStatus],
        requested_size: int,
        page_token: str,
    ) -> Page[ProposalView]:
        community_id = object_id(community_id, "community_id", "community")
        limit = page_size(requested_size)
        offset = d.PAGE_TOKENS.decode(page_token)
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            await community_of(repo, community_id)
            await require_reader(repo, principal, community_id)
            rows = await repo.list_proposals(
                community_id, statuses, self.ctx.clock.now(), offset, limit + 1
            )
            views = [await self.ctx.view(repo, p) for p in rows[: limit + 1]]
        return d.PAGE_TOKENS.page(views, offset, limit)

    async def get_tally(self, principal: Principal, proposal_id: str) -> ProposalView:
        view, _ = await self.get_proposal(principal, proposal_id)
        return view

    async def watchable(self, principal: Principal, proposal_id: str) -> ProposalView:
        """The proposal if the caller may watch it (members of its community)."""
        view, _ = await self.get_proposal(principal, proposal_id)
        return view
