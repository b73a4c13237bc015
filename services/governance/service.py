"""The governance application service: authorization per object, transactions, events.

Callers pass the authenticated `Principal`; nothing here trusts a user id from a request.
Writes run in `Database.transaction()` (SQLite: BEGIN IMMEDIATE, so read-check-write is
serialized; PostgreSQL: rows that gate a decision are locked FOR UPDATE). Every state
change enqueues its event in the outbox in the same transaction.

Events (topic: payload):
- governance.proposal_changed: proposal_id, community_id, change ("vote_cast" with
  voter_id, "status_changed" with status, "anchor_changed" with anchor_status)
- governance.proposal_finalized: proposal_id, community_id, status, tally_digest,
  ballots_digest, result (the canonical result whose SHA-256 is tally_digest); the chain
  translator anchors tally_digest under record id proposal_id (domain 'governance').
- governance.proposal_executed: proposal_id, community_id, kind
- governance.standards_adopted: community_id, kind, version, content_hash, proposal_id
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.governance import domain as d
from services.governance.humanity import HumanityCheck, MirroredHumanityCheck
from services.governance.onchain import (
    ChainProposal,
    ChainResult,
    OnChainVoting,
    metadata_hash,
    quorum_votes,
)
from services.governance.storage import GovernanceRepository, outbox
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.logging import get_logger

log = get_logger(__name__)

# Everything a watcher sees goes to this one topic, so watchers get changes in commit
# order (the fanout orders events within a topic, not across topics).
TOPIC_PROPOSAL_CHANGED = "governance.proposal_changed"
CHANGE_VOTE_CAST = "vote_cast"
CHANGE_STATUS = "status_changed"
CHANGE_ANCHOR = "anchor_changed"
TOPIC_FINALIZED = "governance.proposal_finalized"
TOPIC_EXECUTED = "governance.proposal_executed"
TOPIC_STANDARDS_ADOPTED = "governance.standards_adopted"
WATCH_TOPICS = (TOPIC_PROPOSAL_CHANGED,)


def new_id() -> str:
    return str(uuid.uuid4())


def _object_id(value: str, field_path: str, what: str) -> str:
    """A well-formed object id; malformed ids cannot exist, so they are NOT_FOUND."""
    if not value:
        raise ValidationError(field_path, "is required")
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise NotFound(f"{what} not found") from exc
    return value


@dataclass(frozen=True)
class NewProposal:
    community_id: str
    title: str
    body: str
    kind: d.ProposalKind | None
    options: Sequence[d.ProposalOption]
    standards_change: d.StandardsChange | None
    rules_change: d.CommunityRules | None
    voting_starts_at: datetime | None
    voting_ends_at: datetime | None
    request_id: str


@dataclass(frozen=True)
class ProposalView:
    """A proposal with its tally as of now (final once finalized)."""

    proposal: d.Proposal
    status: d.ProposalStatus
    tally: d.Tally
    tally_final: bool
    as_of: datetime


@dataclass(frozen=True)
class Executed:
    proposal: ProposalView
    adopted: d.StandardsDocument | None


class GovernanceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        humanity: HumanityCheck | None = None,
        notify: Callable[[], None] | None = None,
        onchain: OnChainVoting | None = None,
    ) -> None:
        """`notify` is called after a commit that enqueued events (the outbox relay's
        `notify`, so watchers hear of changes without waiting for the next poll)."""
        self.db = db
        self.clock = clock
        self.humanity: HumanityCheck = humanity or MirroredHumanityCheck(db)
        self._notify = notify or (lambda: None)
        # The governance contract binding; without it ON_CHAIN mode is refused.
        self.onchain = onchain

    # -- helpers ----------------------------------------------------------------------------

    async def _emit(self, session: AsyncSession, topic: str, key: str, **payload: Any) -> None:
        await enqueue(
            session, outbox, Event(topic, key=key, payload=payload, occurred_at=self.clock.now())
        )

    @staticmethod
    async def _community(
        repo: GovernanceRepository, community_id: str, *, lock: bool = False
    ) -> d.Community:
        community = await repo.get_community(community_id, lock=lock)
        if community is None:
            raise NotFound("community not found")
        return community

    @staticmethod
    async def _proposal(
        repo: GovernanceRepository, proposal_id: str, *, lock: bool = False
    ) -> d.Proposal:
        proposal = await repo.get_proposal(proposal_id, lock=lock)
        if proposal is None:
            raise NotFound("proposal not found")
        return proposal

    @staticmethod
    async def _require_reader(
        repo: GovernanceRepository, principal: Principal, community_id: str
    ) -> d.Member | None:
        """Members read a community's members, proposals and tallies; platform admins too."""
        member = await repo.get_member(community_id, principal.user_id)
        if member is None and not principal.is_admin:
            raise PermissionDenied("only members of the community may see this")
        return member

    async def _require_standards_reader(
        self, repo: GovernanceRepository, principal: Principal, community_id: str
    ) -> None:
        community = await self._community(repo, community_id)
        if not community.rules.open_membership:
            await self._require_reader(repo, principal, community_id)

    @staticmethod
    async def _require_member(
        repo: GovernanceRepository, principal: Principal, community_id: str
    ) -> d.Member:
        member = await repo.get_member(community_id, principal.user_id)
        if member is None:
            raise PermissionDenied("you are not a member of this community")
        return member

    async def _view(
        self, repo: GovernanceRepository, proposal: d.Proposal, *, read_chain: bool = False
    ) -> ProposalView:
        """The proposal with its tally now. An open ON_CHAIN proposal's votes live in the
        contract: `read_chain` reads them (GetProposal, GetTally, WatchProposal); lists
        show on-chain counts once finalized."""
        now = self.clock.now()
        status = proposal.status_at(now)
        if proposal.final_tally is not None:
            return ProposalView(proposal, status, proposal.final_tally, True, proposal.updated_at)
        eligible = proposal.eligible_voters
        if eligible is None:
            eligible = await repo.eligible_voters(proposal.community_id)
        if (
            read_chain
            and proposal.voting_mode is d.VotingMode.ON_CHAIN
            and self.onchain is not None
            and proposal.onchain_proposal_id
        ):
            counts, total = await self.onchain.read_votes(
                proposal.onchain_proposal_id, len(proposal.options)
            )
            tally = d.tally_from_counts(
                counts,
                total,
                eligible_voters=eligible,
                quorum_bps=proposal.quorum_bps,
                approval_threshold_bps=proposal.approval_threshold_bps,
                yes_no=proposal.yes_no,
            )
            return ProposalView(proposal, status, tally, False, now)
        tally = d.compute_tally(
            proposal.voting_method,
            len(proposal.options),
            await repo.ballots(proposal.id),
            eligible_voters=eligible,
            quorum_bps=proposal.quorum_bps,
            approval_threshold_bps=proposal.approval_threshold_bps,
            yes_no=proposal.yes_no,
        )
        return ProposalView(proposal, status, tally, False, now)

    # -- communities ------------------------------------------------------------------------

    async def create_community(
        self,
        principal: Principal,
        *,
        name: str,
        description: str,
        rules: d.CommunityRules,
        initial_standards: str,
        initial_validation_rules: str,
        request_id: str,
    ) -> d.Community:
        name = d.required_text(name, "name", d.MAX_NAME_CHARS)
        description = d.bounded_text(description, "description", d.MAX_DESCRIPTION_CHARS)
        rules = d.validate_rules(rules, "rules")
        initial_standards = d.bounded_text(
            initial_standards, "initial_standards", d.MAX_DOCUMENT_CHARS
        )
        initial_validation_rules = d.bounded_text(
            initial_validation_rules, "initial_validation_rules", d.MAX_DOCUMENT_CHARS
        )
        if initial_validation_rules.strip():
            d.validate_standards_change(
                d.StandardsChange(
                    d.StandardsKind.VALIDATION_RULES, initial_validation_rules, "application/json"
                ),
                "initial_validation_rules",
            )
        rid = d.request_id_of(request_id)
        self._require_mode_available(rules.voting_mode, "rules.voting_mode")
        if rid is not None:
            existing = await self._community_by_request(principal.user_id, rid)
            if existing is not None:
                return existing
        now = self.clock.now()
        community = d.Community(
            id=new_id(),
            name=name,
            description=description,
            rules=rules,
            created_by=principal.user_id,
            member_count=1,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.transaction() as session:
                repo = GovernanceRepository(session)
                await repo.insert_community(community, rid)
                await repo.insert_member(community.id, principal.user_id, d.MemberRole.ADMIN, now)
                documents = (
                    (d.StandardsKind.COMMUNITY_STANDARDS, initial_standards, "text/markdown"),
                    (
                        d.StandardsKind.VALIDATION_RULES,
                        initial_validation_rules,
                        "application/json",
                    ),
                )
                for kind, content, content_type in documents:
                    if content.strip():
                        await repo.insert_standards(
                            d.StandardsDocument(
                                community_id=community.id,
                                kind=kind,
                                version=1,
                                content=content,
                                content_type=content_type,
                                content_hash=d.content_hash(content),
                                proposal_id="",
                                adopted_at=now,
                            )
                        )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            if rid is not None:
                existing = await self._community_by_request(principal.user_id, rid)
                if existing is not None:
                    return existing
            raise AlreadyExists(f"a community named {name!r} already exists") from exc
        return community

    async def _community_by_request(self, user_id: str, rid: str) -> d.Community | None:
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            found = await repo.community_by_request(user_id, rid)
            return None if found is None else await repo.get_community(found)

    def _require_mode_available(self, mode: d.VotingMode, field_path: str) -> None:
        if mode is d.VotingMode.ON_CHAIN and self.onchain is None:
            raise FailedPrecondition(
                f"{field_path}: on-chain voting is not available in this deployment "
                "(no governance contract binding is configured); use VOTING_MODE_OFF_CHAIN, "
                "whose results are anchored on chain"
            )

    async def get_community(
        self, principal: Principal, community_id: str
    ) -> tuple[d.Community, d.Member | None]:
        community_id = _object_id(community_id, "community_id", "community")
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            community = await self._community(repo, community_id)
            return community, await repo.get_member(community_id, principal.user_id)

    async def list_communities(
        self,
        principal: Principal,
        *,
        query: str,
        member_only: bool,
        requested_size: int,
        page_token: str,
    ) -> d.Page[d.Community]:
        limit = d.page_size(requested_size)
        offset = d.decode_page_token(page_token)
        query = d.bounded_text(query.strip(), "query", d.MAX_NAME_CHARS)
        async with self.db.session() as session:
            rows = await GovernanceRepository(session).list_communities(
                query=query,
                member_of=principal.user_id if member_only else None,
                offset=offset,
                limit=limit + 1,
            )
        return d.paged(rows, offset, limit)

    async def join_community(self, principal: Principal, community_id: str) -> d.Member:
        community_id = _object_id(community_id, "community_id", "community")
        try:
            async with self.db.transaction() as session:
                repo = GovernanceRepository(session)
                community = await self._community(repo, community_id)
                existing = await repo.get_member(community_id, principal.user_id)
                if existing is not None:
                    return existing  # joining twice is a no-op
                if not community.rules.open_membership:
                    raise PermissionDenied(
                        "membership of this community is by approval: a community admin "
                        "adds members"
                    )
                await repo.insert_member(
                    community_id, principal.user_id, d.MemberRole.MEMBER, self.clock.now()
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
        async with self.db.session() as session:
            member = await GovernanceRepository(session).get_member(community_id, principal.user_id)
        if member is None:  # left again in between
            raise NotFound("membership not found")
        return member

    async def leave_community(self, principal: Principal, community_id: str) -> None:
        community_id = _object_id(community_id, "community_id", "community")
        async with self.db.transaction() as session:
            repo = GovernanceRepository(session)
            await self._community(repo, community_id, lock=True)
            member = await repo.get_member(community_id, principal.user_id)
            if member is None:
                return  # leaving twice is a no-op (a retried request)
            if member.role is d.MemberRole.ADMIN and await repo.admin_count(community_id) <= 1:
                raise FailedPrecondition(
                    "the last admin cannot leave: make another member admin first"
                )
            await repo.delete_member(community_id, principal.user_id)

    async def list_members(
        self,
        principal: Principal,
        community_id: str,
        role: d.MemberRole | None,
        requested_size: int,
        page_token: str,
    ) -> d.Page[d.Member]:
        community_id = _object_id(community_id, "community_id", "community")
        limit = d.page_size(requested_size)
        offset = d.decode_page_token(page_token)
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            await self._community(repo, community_id)
            await self._require_reader(repo, principal, community_id)
            rows = await repo.list_members(community_id, role, offset, limit + 1)
        return d.paged(rows, offset, limit)

    async def set_member_role(
        self, principal: Principal, community_id: str, user_id: str, role: d.MemberRole
    ) -> d.Member:
        community_id = _object_id(community_id, "community_id", "community")
        user_id = d.required_text(user_id, "user_id", 64)
        async with self.db.transaction() as session:
            repo = GovernanceRepository(session)
            await self._community(repo, community_id, lock=True)
            caller = await repo.get_member(community_id, principal.user_id)
            if caller is None or caller.role is not d.MemberRole.ADMIN:
                raise PermissionDenied("only community admins may set member roles")
            target = await repo.get_member(community_id, user_id)
            if target is None:
                # Adds members (the way into a closed community).
                await repo.insert_member(community_id, user_id, role, self.clock.now())
            elif target.role is not role:
                if target.role is d.MemberRole.ADMIN and await repo.admin_count(community_id) <= 1:
                    raise FailedPrecondition(
                        "the last admin cannot step down: make another member admin first"
                    )
                await repo.set_role(community_id, user_id, role)
            member = await repo.get_member(community_id, user_id)
        assert member is not None
        return member

    # -- proposals --------------------------------------------------------------------------

    async def create_proposal(self, principal: Principal, new: NewProposal) -> ProposalView:
        community_id = _object_id(new.community_id, "community_id", "community")
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
            self._require_mode_available(rules_change.voting_mode, "rules_change.voting_mode")
        if new.kind is not d.ProposalKind.GENERAL and not yes_no:
            raise ValidationError(
                "options", "a change proposal is voted For/Against/Abstain: leave options empty"
            )
        rid = d.request_id_of(new.request_id)
        if rid is not None:
            replay = await self._proposal_by_request(principal, rid)
            if replay is not None:
                return replay
        now = self.clock.now()
        proposal_id = new_id()
        chain_proposal = await self._create_on_chain(
            principal, proposal_id, community_id, new, title, body, options, now
        )
        try:
            async with self.db.transaction() as session:
                repo = GovernanceRepository(session)
                community = await self._community(repo, community_id)
                member = await self._require_member(repo, principal, community_id)
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
                await self._emit(
                    session,
                    TOPIC_PROPOSAL_CHANGED,
                    proposal.id,
                    change=CHANGE_STATUS,
                    proposal_id=proposal.id,
                    community_id=community_id,
                    status=proposal.status.value,
                )
                view = await self._view(repo, proposal)
        except IntegrityError as exc:
            if not is_unique_violation(exc) or rid is None:
                raise
            replay = await self._proposal_by_request(principal, rid)
            if replay is None:
                raise
            return replay
        self._notify()
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
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            community = await self._community(repo, community_id)
            rules = community.rules
            if rules.voting_mode is not d.VotingMode.ON_CHAIN:
                return None
            member = await self._require_member(repo, principal, community_id)
            if not member.role.at_least(rules.proposer_role):
                raise PermissionDenied(
                    f"creating proposals needs the {rules.proposer_role.value} role"
                )
            eligible = await repo.eligible_voters(community_id)
        self._require_mode_available(rules.voting_mode, "rules.voting_mode")
        assert self.onchain is not None
        window = d.voting_window(
            now, new.voting_starts_at, new.voting_ends_at, rules.default_voting_period
        )
        return await self.onchain.create_proposal(
            metadata_hash=metadata_hash(proposal_id, title, body, [o.label for o in options]),
            options_count=len(options),
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            quorum_votes=quorum_votes(rules.quorum_bps, eligible),
        )

    async def _proposal_by_request(self, principal: Principal, rid: str) -> ProposalView | None:
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            found = await repo.proposal_by_request(principal.user_id, rid)
            if found is None:
                return None
            return await self._view(repo, await self._proposal(repo, found))

    async def get_proposal(
        self, principal: Principal, proposal_id: str
    ) -> tuple[ProposalView, d.Vote | None]:
        proposal_id = _object_id(proposal_id, "proposal_id", "proposal")
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id)
            await self._require_reader(repo, principal, proposal.community_id)
            return (
                await self._view(repo, proposal, read_chain=True),
                await repo.get_vote(proposal_id, principal.user_id),
            )

    async def list_proposals(
        self,
        principal: Principal,
        community_id: str,
        statuses: Sequence[d.ProposalStatus],
        requested_size: int,
        page_token: str,
    ) -> d.Page[ProposalView]:
        community_id = _object_id(community_id, "community_id", "community")
        limit = d.page_size(requested_size)
        offset = d.decode_page_token(page_token)
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            await self._community(repo, community_id)
            await self._require_reader(repo, principal, community_id)
            rows = await repo.list_proposals(
                community_id, statuses, self.clock.now(), offset, limit + 1
            )
            views = [await self._view(repo, p) for p in rows[: limit + 1]]
        return d.paged(views, offset, limit)

    async def get_tally(self, principal: Principal, proposal_id: str) -> ProposalView:
        view, _ = await self.get_proposal(principal, proposal_id)
        return view

    # -- voting -----------------------------------------------------------------------------

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
        proposal_id = _object_id(proposal_id, "proposal_id", "proposal")
        rid = d.request_id_of(request_id)
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id)
            existing = await repo.get_vote(proposal_id, principal.user_id)
            if existing is None:
                await self._require_member(repo, principal, proposal.community_id)
        if existing is not None:
            return await self._replayed(existing, rid)
        # Outside any transaction: the check may read through its own connection.
        if not await self.humanity.is_verified_human(principal.user_id):
            raise FailedPrecondition(
                "only verified humans vote: register your proof of humanity first"
            )
        tx_hash = ""
        if proposal.voting_mode is d.VotingMode.ON_CHAIN:
            tx_hash = await self._cast_on_chain(principal, proposal_id, choices, rid)
        replay: d.Vote | None = None
        try:
            async with self.db.transaction() as session:
                repo = GovernanceRepository(session)
                proposal = await self._proposal(repo, proposal_id)
                replay = await repo.get_vote(proposal_id, principal.user_id)
                if replay is None:
                    member = await self._require_member(repo, principal, proposal.community_id)
                    if member.joined_at > proposal.voting_starts_at:
                        # Eligibility is fixed when voting opens (no joining to swing a vote).
                        raise PermissionDenied(
                            "only members who joined before voting opened may vote on it"
                        )
                    now = self.clock.now()
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
                        proposal = await self._activate(repo, session, proposal)
                    await self._emit(
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
            async with self.db.session() as session:
                replay = await GovernanceRepository(session).get_vote(
                    proposal_id, principal.user_id
                )
            if replay is None:
                raise
        if replay is not None:
            return await self._replayed(replay, rid)
        self._notify()
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            view = await self._view(repo, await self._proposal(repo, proposal_id))
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
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id)
            member = await self._require_member(repo, principal, proposal.community_id)
            if member.joined_at > proposal.voting_starts_at:
                raise PermissionDenied(
                    "only members who joined before voting opened may vote on it"
                )
            now = self.clock.now()
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
        if self.onchain is None or not proposal.onchain_proposal_id:
            raise FailedPrecondition("on-chain voting is not available in this deployment")
        return await self.onchain.cast_vote(
            proposal.onchain_proposal_id,
            commitment,
            ballot[0].option_index,
            rid or f"{proposal_id}:{principal.user_id}",
        )

    async def _replayed(self, existing: d.Vote, rid: str | None) -> tuple[d.Vote, ProposalView]:
        if rid is None or existing.request_id != rid:
            raise AlreadyExists("you have already voted on this proposal")
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            view = await self._view(repo, await self._proposal(repo, existing.proposal_id))
        return existing, view

    @staticmethod
    def _closed_reason(proposal: d.Proposal, now: datetime) -> str:
        status = proposal.status_at(now)
        if not status.open:
            return f"proposal is {status.value}: voting is closed"
        if now < proposal.voting_starts_at:
            return f"voting opens at {proposal.voting_starts_at.isoformat()}"
        return f"voting closed at {proposal.voting_ends_at.isoformat()}"

    async def _activate(
        self, repo: GovernanceRepository, session: AsyncSession, proposal: d.Proposal
    ) -> d.Proposal:
        """Persist PENDING -> ACTIVE and snapshot the eligible voters."""
        status = d.transition(proposal.status, d.ProposalStatus.ACTIVE)
        eligible = await repo.eligible_voters(proposal.community_id)
        now = self.clock.now()
        await repo.update_proposal(
            proposal.id, status=status, eligible_voters=eligible, updated_at=now
        )
        await self._emit(
            session,
            TOPIC_PROPOSAL_CHANGED,
            proposal.id,
            change=CHANGE_STATUS,
            proposal_id=proposal.id,
            community_id=proposal.community_id,
            status=status.value,
        )
        return replace(proposal, status=status, eligible_voters=eligible, updated_at=now)

    # -- lifecycle --------------------------------------------------------------------------

    async def finalize_proposal(self, principal: Principal, proposal_id: str) -> ProposalView:
        """Anyone who may read the proposal may finalize it once its window has ended;
        finalizing again returns the recorded result."""
        proposal_id = _object_id(proposal_id, "proposal_id", "proposal")
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id)
            await self._require_reader(repo, principal, proposal.community_id)
        return await self._finalize(proposal_id)

    async def _finalize(self, proposal_id: str) -> ProposalView:
        chain_result = await self._finalize_on_chain(proposal_id)
        changed = False
        async with self.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id, lock=True)
            now = self.clock.now()
            if proposal.status is d.ProposalStatus.CANCELED:
                raise FailedPrecondition("proposal is canceled: there is no result")
            if not proposal.status.finalized:
                if now < proposal.voting_ends_at:
                    raise FailedPrecondition(
                        f"voting is open until {proposal.voting_ends_at.isoformat()}"
                    )
                if proposal.status is d.ProposalStatus.PENDING:
                    proposal = await self._activate(repo, session, proposal)
                proposal = await self._record_result(repo, session, proposal, now, chain_result)
                changed = True
            view = await self._view(repo, proposal)
        if changed:
            self._notify()
        return view

    async def _finalize_on_chain(self, proposal_id: str) -> ChainResult | None:
        """ON_CHAIN proposals whose window ended: finalize in the contract (or find it
        finalized) and read the totals back. None for off-chain proposals."""
        async with self.db.session() as session:
            proposal = await self._proposal(GovernanceRepository(session), proposal_id)
        if (
            proposal.voting_mode is not d.VotingMode.ON_CHAIN
            or not proposal.status.open
            or self.clock.now() < proposal.voting_ends_at
        ):
            return None
        if self.onchain is None or not proposal.onchain_proposal_id:
            raise FailedPrecondition("on-chain voting is not available in this deployment")
        return await self.onchain.finalize(proposal.onchain_proposal_id, len(proposal.options))

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
        await self._emit(
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
        await self._emit(
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
        proposal_id = _object_id(proposal_id, "proposal_id", "proposal")
        reason = d.bounded_text(reason.strip(), "reason", d.MAX_REASON_CHARS)
        async with self.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id, lock=True)
            member = await repo.get_member(proposal.community_id, principal.user_id)
            is_author = proposal.author_id == principal.user_id
            moderates = member is not None and member.role.at_least(d.MemberRole.MODERATOR)
            if not (is_author and member is not None) and not moderates:
                raise PermissionDenied(
                    "only the author or a moderator of the community may cancel a proposal"
                )
            now = self.clock.now()
            if proposal.status is d.ProposalStatus.CANCELED:
                return await self._view(repo, proposal)  # a retried cancel
            status = d.transition(proposal.status, d.ProposalStatus.CANCELED)
            if now >= proposal.voting_ends_at:
                raise FailedPrecondition("voting has ended: the proposal can only be finalized")
            await repo.update_proposal(
                proposal_id, status=status, cancel_reason=reason, updated_at=now
            )
            await self._emit(
                session,
                TOPIC_PROPOSAL_CHANGED,
                proposal_id,
                change=CHANGE_STATUS,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                status=status.value,
            )
            view = await self._view(
                repo, replace(proposal, status=status, cancel_reason=reason, updated_at=now)
            )
        self._notify()
        return view

    async def execute_proposal(self, principal: Principal, proposal_id: str) -> Executed:
        """Any member applies a SUCCEEDED proposal: the community decided, executing only
        carries the decision out. Executing again returns the recorded execution."""
        proposal_id = _object_id(proposal_id, "proposal_id", "proposal")
        async with self.db.transaction() as session:
            repo = GovernanceRepository(session)
            proposal = await self._proposal(repo, proposal_id, lock=True)
            await self._community(repo, proposal.community_id, lock=True)
            await self._require_member(repo, principal, proposal.community_id)
            adopted: d.StandardsDocument | None = None
            if proposal.status is d.ProposalStatus.EXECUTED:
                if proposal.standards_change is not None:
                    adopted = await self._adopted_by(repo, proposal)
                return Executed(await self._view(repo, proposal), adopted)
            if proposal.status.open:
                raise FailedPrecondition(
                    "proposal is not finalized: finalize it after its voting window ends"
                )
            status = d.transition(proposal.status, d.ProposalStatus.EXECUTED)
            now = self.clock.now()
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
                await self._emit(
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
            await self._emit(
                session,
                TOPIC_EXECUTED,
                proposal_id,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                kind=proposal.kind.value,
            )
            await self._emit(
                session,
                TOPIC_PROPOSAL_CHANGED,
                proposal_id,
                change=CHANGE_STATUS,
                proposal_id=proposal_id,
                community_id=proposal.community_id,
                status=status.value,
            )
            view = await self._view(repo, replace(proposal, status=status, updated_at=now))
        self._notify()
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
        now = self.clock.now()
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            to_activate = await repo.due_for_activation(now, limit)
            to_finalize = await repo.due_for_finalization(now, limit)
        changed = 0
        for proposal_id in to_activate:
            if proposal_id in to_finalize:
                continue
            async with self.db.transaction() as session:
                repo = GovernanceRepository(session)
                proposal = await self._proposal(repo, proposal_id, lock=True)
                if proposal.status is d.ProposalStatus.PENDING:
                    await self._activate(repo, session, proposal)
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
            self._notify()
        return changed

    # -- watching ---------------------------------------------------------------------------

    async def watchable(self, principal: Principal, proposal_id: str) -> ProposalView:
        """The proposal if the caller may watch it (members of its community)."""
        view, _ = await self.get_proposal(principal, proposal_id)
        return view

    # -- standards --------------------------------------------------------------------------

    async def get_standards(
        self, principal: Principal, community_id: str, kind: d.StandardsKind, version: int
    ) -> d.StandardsDocument:
        """An open community's standards are public to any authenticated caller (anyone
        may check what its records are validated against); a closed community's are for
        its members and platform admins (issue 9)."""
        community_id = _object_id(community_id, "community_id", "community")
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            await self._require_standards_reader(repo, principal, community_id)
            doc = await repo.get_standards(community_id, kind, version)
        if doc is None:
            raise NotFound(
                f"no {kind.value} version {version}" if version else f"no {kind.value} adopted yet"
            )
        return doc

    async def list_standards_versions(
        self,
        principal: Principal,
        community_id: str,
        kind: d.StandardsKind,
        requested_size: int,
        page_token: str,
    ) -> d.Page[d.StandardsDocument]:
        community_id = _object_id(community_id, "community_id", "community")
        limit = d.page_size(requested_size)
        offset = d.decode_page_token(page_token)
        async with self.db.session() as session:
            repo = GovernanceRepository(session)
            await self._require_standards_reader(repo, principal, community_id)
            rows = await repo.list_standards(community_id, kind, offset, limit + 1)
        return d.paged(rows, offset, limit)
