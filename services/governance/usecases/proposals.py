"""Proposals: creating one (in the contract first for an ON_CHAIN community), reading,
listing, the tally, and who may watch one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

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
    Unavailable,
    ValidationError,
)
from services.kit.idempotency import Replayed
from services.kit.paging import Page, page_size

# How long a retry racing its first call waits for that call's on-chain proposal before
# answering UNAVAILABLE (the client retries again and then gets the proposal).
HOLDER_WAIT_S = 30.0
# A claim this old whose proposal was never stored belongs to a call that died mid-send:
# a retry takes the request over (far above any chain call's timeout).
CLAIM_ABANDONED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class _Valid:
    """A validated CreateProposal, with the id and time it is created under."""

    new: NewProposal
    proposal_id: str
    community_id: str
    kind: d.ProposalKind
    title: str
    body: str
    options: tuple[d.ProposalOption, ...]
    yes_no: bool
    standards_change: d.StandardsChange | None
    rules_change: d.CommunityRules | None
    rid: str | None
    now: datetime


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
        v = _Valid(
            new,
            new_id(),
            community_id,
            new.kind,
            title,
            body,
            options,
            yes_no,
            standards_change,
            rules_change,
            rid,
            self.ctx.clock.now(),
        )
        send = await self._on_chain_send(principal, v)
        if send is None or rid is None:
            return await self._insert(principal, v, send)
        holder = await self._claim(principal, rid, v.proposal_id, v.now)
        if holder is not None:
            view = await self._holders_proposal(principal, rid, holder)
            # None: the holder failed and let the request go; do the work as a retry would.
            return view if view is not None else await self.create_proposal(principal, new)
        try:
            return await self._insert(principal, v, send)
        except BaseException:
            # Not stored: a retry must be able to claim the request again.
            await self._release(principal, rid, v.proposal_id)
            raise

    async def _insert(
        self,
        principal: Principal,
        v: _Valid,
        send: Callable[[], Awaitable[ChainProposal]] | None,
    ) -> ProposalView:
        """Send the proposal to the contract (ON_CHAIN), then store it."""
        chain_proposal = await send() if send is not None else None
        community_id, now, new, rid = v.community_id, v.now, v.new, v.rid
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
                    id=v.proposal_id,
                    community_id=community_id,
                    author_id=principal.user_id,
                    title=v.title,
                    body=v.body,
                    kind=v.kind,
                    options=v.options,
                    yes_no=v.yes_no,
                    standards_change=v.standards_change,
                    rules_change=v.rules_change,
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

    async def _on_chain_send(
        self, principal: Principal, v: _Valid
    ) -> Callable[[], Awaitable[ChainProposal]] | None:
        """For an ON_CHAIN community: authorize, then the call that creates the proposal in
        the governance contract (sent before the database insert, so no row ever lacks its
        chain twin); None for an OFF_CHAIN one."""
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            community = await community_of(repo, v.community_id)
            rules = community.rules
            if rules.voting_mode is not d.VotingMode.ON_CHAIN:
                return None
            member = await require_member(repo, principal, v.community_id)
            if not member.role.at_least(rules.proposer_role):
                raise PermissionDenied(
                    f"creating proposals needs the {rules.proposer_role.value} role"
                )
            eligible = await repo.eligible_voters(v.community_id)
        self.ctx.require_mode_available(rules.voting_mode, "rules.voting_mode")
        onchain = self.ctx.onchain
        assert onchain is not None
        window = d.voting_window(
            v.now, v.new.voting_starts_at, v.new.voting_ends_at, rules.default_voting_period
        )
        labels = [o.label for o in v.options]
        return partial(
            onchain.create_proposal,
            metadata_hash=metadata_hash(v.proposal_id, v.title, v.body, labels),
            options_count=len(v.options),
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            quorum_votes=quorum_votes(rules.quorum_bps, eligible),
        )

    async def _claim(
        self, principal: Principal, rid: str, proposal_id: str, now: datetime
    ) -> str | None:
        """Claim the request for `proposal_id` in a transaction of its own, committed before
        the send; the proposal id of the call already holding it, if one does (a twin
        still sending waits here on PostgreSQL, at BEGIN IMMEDIATE on SQLite)."""
        try:
            async with self.ctx.db.transaction() as session:
                await GovernanceRepository(session).claim_proposal_request(
                    principal.user_id, rid, proposal_id, now
                )
        except Replayed as replayed:
            return str(replayed.result)
        return None

    async def _release(self, principal: Principal, rid: str, proposal_id: str) -> None:
        async with self.ctx.db.transaction() as session:
            await GovernanceRepository(session).release_proposal_claim(
                principal.user_id, rid, proposal_id
            )

    async def _holders_proposal(
        self, principal: Principal, rid: str, holder: str
    ) -> ProposalView | None:
        """What the call holding the request stores, once it has: its proposal; None once
        it let the request go (its send or insert failed, or it was abandoned for
        CLAIM_ABANDONED_AFTER, so a crash mid-send cannot block the request id forever)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLDER_WAIT_S
        delay = 0.02
        while True:
            stored = await self._proposal_by_request(principal, rid)
            if stored is not None:
                return stored
            async with self.ctx.db.session() as session:
                held = await GovernanceRepository(session).proposal_claim(principal.user_id, rid)
            if held is None or held[0] != holder:
                # Let go (failed, or taken over): None unless it stored just before.
                return await self._proposal_by_request(principal, rid)
            if self.ctx.clock.now() - held[1] > CLAIM_ABANDONED_AFTER:
                await self._release(principal, rid, holder)
                return None
            if loop.time() >= deadline:
                raise Unavailable(
                    "an earlier call with this request_id is still creating the proposal on "
                    "chain: retry with the same request_id"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

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
