"""What every governance use case shares: the context it runs in (database, clock, the
humanity check, the contract binding, the callback run after a commit that enqueued
events), the events it announces, loading the objects a use case authorizes against, and
the proposal view (a proposal with its tally now)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.governance import domain as d
from services.governance.humanity import HumanityCheck
from services.governance.onchain import OnChainVoting
from services.governance.storage import GovernanceRepository, outbox
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, ValidationError
from services.kit.events import Event
from services.kit.events.outbox import enqueue

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


def object_id(value: str, field_path: str, what: str) -> str:
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


async def community_of(
    repo: GovernanceRepository, community_id: str, *, lock: bool = False
) -> d.Community:
    community = await repo.get_community(community_id, lock=lock)
    if community is None:
        raise NotFound("community not found")
    return community


async def proposal_of(
    repo: GovernanceRepository, proposal_id: str, *, lock: bool = False
) -> d.Proposal:
    proposal = await repo.get_proposal(proposal_id, lock=lock)
    if proposal is None:
        raise NotFound("proposal not found")
    return proposal


async def require_reader(
    repo: GovernanceRepository, principal: Principal, community_id: str
) -> d.Member | None:
    """Members read a community's members, proposals and tallies; platform admins too."""
    member = await repo.get_member(community_id, principal.user_id)
    if member is None and not principal.is_admin:
        raise PermissionDenied("only members of the community may see this")
    return member


async def require_member(
    repo: GovernanceRepository, principal: Principal, community_id: str
) -> d.Member:
    member = await repo.get_member(community_id, principal.user_id)
    if member is None:
        raise PermissionDenied("you are not a member of this community")
    return member


async def require_standards_reader(
    repo: GovernanceRepository, principal: Principal, community_id: str
) -> None:
    community = await community_of(repo, community_id)
    if not community.rules.open_membership:
        await require_reader(repo, principal, community_id)


@dataclass
class GovernanceContext:
    """`notify` is called after a commit that enqueued events (the outbox relay's
    `notify`, so watchers hear of changes without waiting for the next poll); without
    `onchain` (the governance contract binding) ON_CHAIN mode is refused."""

    db: Database
    clock: Clock
    humanity: HumanityCheck
    notify: Callable[[], None]
    onchain: OnChainVoting | None = None

    async def emit(self, session: AsyncSession, topic: str, key: str, **payload: Any) -> None:
        await enqueue(
            session, outbox, Event(topic, key=key, payload=payload, occurred_at=self.clock.now())
        )

    def require_mode_available(self, mode: d.VotingMode, field_path: str) -> None:
        if mode is d.VotingMode.ON_CHAIN and self.onchain is None:
            raise FailedPrecondition(
                f"{field_path}: on-chain voting is not available in this deployment "
                "(no governance contract binding is configured); use VOTING_MODE_OFF_CHAIN, "
                "whose results are anchored on chain"
            )

    async def view(
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

    async def activate(
        self, repo: GovernanceRepository, session: AsyncSession, proposal: d.Proposal
    ) -> d.Proposal:
        """Persist PENDING -> ACTIVE and snapshot the eligible voters."""
        status = d.transition(proposal.status, d.ProposalStatus.ACTIVE)
        eligible = await repo.eligible_voters(proposal.community_id)
        now = self.clock.now()
        await repo.update_proposal(
            proposal.id, status=status, eligible_voters=eligible, updated_at=now
        )
        await self.emit(
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
