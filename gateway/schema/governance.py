"""Governance over GraphQL: communities, members, proposals, votes, tallies, standards,
and the `proposalUpdated` subscription (backed by the WatchProposal server stream).

Every resolver calls the governance service over gRPC with the caller's token; none
imports its Python code. Authorization, validation and idempotency live in the service;
its statuses arrive here as errors with stable `extensions.code`s (and `field` for bad
input).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import Any

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import rpc, rpc_stream
from services.api.keiko.common import v1 as common
from services.api.keiko.governance import v1 as pb

# -- enums ----------------------------------------------------------------------------------


@strawberry.enum(description="How a voter expresses preference and how the tally counts it.")
class VotingMethod(enum.Enum):
    SINGLE_CHOICE = "SINGLE_CHOICE"
    APPROVAL = "APPROVAL"
    WEIGHTED = "WEIGHTED"
    QUADRATIC = "QUADRATIC"


@strawberry.enum(description="Where votes are cast and counted.")
class VotingMode(enum.Enum):
    OFF_CHAIN = "OFF_CHAIN"
    ON_CHAIN = "ON_CHAIN"


@strawberry.enum(description="A member's role inside one community.")
class CommunityRole(enum.Enum):
    MEMBER = "MEMBER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


@strawberry.enum
class ProposalKind(enum.Enum):
    GENERAL = "GENERAL"
    STANDARDS_CHANGE = "STANDARDS_CHANGE"
    RULES_CHANGE = "RULES_CHANGE"


@strawberry.enum(
    description="PENDING -> ACTIVE -> DEFEATED | SUCCEEDED -> EXECUTED; CANCELED from "
    "PENDING or ACTIVE."
)
class ProposalStatus(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    DEFEATED = "DEFEATED"
    SUCCEEDED = "SUCCEEDED"
    EXECUTED = "EXECUTED"
    CANCELED = "CANCELED"


@strawberry.enum
class StandardsKind(enum.Enum):
    COMMUNITY_STANDARDS = "COMMUNITY_STANDARDS"
    VALIDATION_RULES = "VALIDATION_RULES"


@strawberry.enum
class ProposalEventKind(enum.Enum):
    VOTE_CAST = "VOTE_CAST"
    STATUS_CHANGED = "STATUS_CHANGED"
    ANCHOR_CHANGED = "ANCHOR_CHANGED"


@strawberry.enum(description="Anchoring of a proposal's result on Keikochain.")
class ResultAnchorStatus(enum.Enum):
    NONE = "NONE"
    PENDING = "PENDING"
    ANCHORED = "ANCHORED"
    FAILED = "FAILED"


def _name(value: Any, enum_type: type[enum.Enum], prefix: str) -> Any:
    name = str(type(value)(value).name).removeprefix(prefix)
    return enum_type[name]


# -- types ----------------------------------------------------------------------------------


@strawberry.type
class CommunityRules:
    voting_method: VotingMethod
    voting_mode: VotingMode
    quorum_bps: int = strawberry.field(description="Share of eligible voters, basis points.")
    approval_threshold_bps: int
    default_voting_period_seconds: int
    proposer_role: CommunityRole
    open_membership: bool
    quadratic_credit_budget: int

    @staticmethod
    def from_pb(rules: pb.CommunityRules) -> CommunityRules:
        return CommunityRules(
            voting_method=_name(rules.voting_method, VotingMethod, "VOTING_METHOD_"),
            voting_mode=_name(rules.voting_mode, VotingMode, "VOTING_MODE_"),
            quorum_bps=rules.quorum_bps,
            approval_threshold_bps=rules.approval_threshold_bps,
            default_voting_period_seconds=int(rules.default_voting_period.total_seconds()),
            proposer_role=_name(rules.proposer_role, CommunityRole, "MEMBER_ROLE_"),
            open_membership=rules.open_membership,
            quadratic_credit_budget=rules.quadratic_credit_budget,
        )


@strawberry.type
class CommunityMember:
    community_id: strawberry.ID
    user_id: strawberry.ID
    role: CommunityRole
    human_verified: bool
    joined_at: datetime

    @staticmethod
    def from_pb(m: pb.Member) -> CommunityMember:
        return CommunityMember(
            community_id=strawberry.ID(m.community_id),
            user_id=strawberry.ID(m.user_id),
            role=_name(m.role, CommunityRole, "MEMBER_ROLE_"),
            human_verified=m.human_verified,
            joined_at=m.joined_at,
        )


@strawberry.type
class Community:
    id: strawberry.ID
    name: str
    description: str
    rules: CommunityRules
    created_by: strawberry.ID
    member_count: int
    created_at: datetime
    updated_at: datetime
    my_membership: CommunityMember | None = strawberry.field(
        default=None, description="The caller's membership (set by `community(id)`)."
    )

    @staticmethod
    def from_pb(c: pb.Community, membership: pb.Member | None = None) -> Community:
        return Community(
            id=strawberry.ID(c.id),
            name=c.name,
            description=c.description,
            rules=CommunityRules.from_pb(c.rules),
            created_by=strawberry.ID(c.created_by),
            member_count=c.member_count,
            created_at=c.created_at,
            updated_at=c.updated_at,
            my_membership=CommunityMember.from_pb(membership) if membership else None,
        )


@strawberry.type
class ProposalOption:
    index: int
    label: str
    description: str


@strawberry.type
class OptionTally:
    option_index: int
    voters: int
    votes: float


@strawberry.type
class ProposalTally:
    proposal_id: strawberry.ID
    options: list[OptionTally]
    total_voters: int
    eligible_voters: int
    quorum_reached: bool
    leading_option_index: int | None
    final: bool
    as_of: datetime

    @staticmethod
    def from_pb(t: pb.Tally) -> ProposalTally:
        return ProposalTally(
            proposal_id=strawberry.ID(t.proposal_id),
            options=[
                OptionTally(option_index=o.option_index, voters=o.voters, votes=o.votes)
                for o in t.options
            ],
            total_voters=t.total_voters,
            eligible_voters=t.eligible_voters,
            quorum_reached=t.quorum_reached,
            leading_option_index=t.leading_option_index,
            final=t.final,
            as_of=t.as_of,
        )


@strawberry.type
class VoteChoice:
    option_index: int
    weight: int
    credits: int


@strawberry.type
class Vote:
    proposal_id: strawberry.ID
    voter_id: strawberry.ID
    choices: list[VoteChoice]
    cast_at: datetime
    tx_hash: str

    @staticmethod
    def from_pb(v: pb.Vote) -> Vote:
        return Vote(
            proposal_id=strawberry.ID(v.proposal_id),
            voter_id=strawberry.ID(v.voter_id),
            choices=[
                VoteChoice(option_index=c.option_index, weight=c.weight, credits=c.credits)
                for c in v.choices
            ],
            cast_at=v.cast_at,
            tx_hash=v.tx_hash,
        )


@strawberry.type
class StandardsChange:
    kind: StandardsKind
    content: str
    content_type: str


@strawberry.type
class ResultAnchor:
    status: ResultAnchorStatus
    tx_hash: str
    block_number: int
    batch_id: str

    @staticmethod
    def from_pb(a: common.AnchorState) -> ResultAnchor:
        status = str(common.AnchorStatus(a.status).name).removeprefix("ANCHOR_STATUS_")
        return ResultAnchor(
            status=ResultAnchorStatus.NONE
            if status == "UNSPECIFIED"
            else ResultAnchorStatus[status],
            tx_hash=a.tx_hash,
            block_number=a.block_number,
            batch_id=a.batch_id,
        )


@strawberry.type
class Proposal:
    id: strawberry.ID
    community_id: strawberry.ID
    author_id: strawberry.ID
    title: str
    body: str
    kind: ProposalKind
    options: list[ProposalOption]
    standards_change: StandardsChange | None
    rules_change: CommunityRules | None
    voting_starts_at: datetime
    voting_ends_at: datetime
    voting_method: VotingMethod
    voting_mode: VotingMode
    quorum_bps: int
    status: ProposalStatus
    tally: ProposalTally
    anchor: ResultAnchor
    cancel_reason: str
    created_at: datetime
    updated_at: datetime
    my_vote: Vote | None = strawberry.field(
        default=None, description="The caller's vote (set by `proposal(id)`)."
    )

    @staticmethod
    def from_pb(p: pb.Proposal, my_vote: pb.Vote | None = None) -> Proposal:
        which, _ = betterproto.which_one_of(p, "change")
        standards_change = None
        rules_change = None
        if which == "standards_change":
            sc = p.standards_change
            standards_change = StandardsChange(
                kind=_name(sc.kind, StandardsKind, "STANDARDS_KIND_"),
                content=sc.content,
                content_type=sc.content_type,
            )
        elif which == "rules_change":
            rules_change = CommunityRules.from_pb(p.rules_change)
        return Proposal(
            id=strawberry.ID(p.id),
            community_id=strawberry.ID(p.community_id),
            author_id=strawberry.ID(p.author_id),
            title=p.title,
            body=p.body,
            kind=_name(p.kind, ProposalKind, "PROPOSAL_KIND_"),
            options=[
                ProposalOption(index=o.index, label=o.label, description=o.description)
                for o in p.options
            ],
            standards_change=standards_change,
            rules_change=rules_change,
            voting_starts_at=p.voting_starts_at,
            voting_ends_at=p.voting_ends_at,
            voting_method=_name(p.voting_method, VotingMethod, "VOTING_METHOD_"),
            voting_mode=_name(p.voting_mode, VotingMode, "VOTING_MODE_"),
            quorum_bps=p.quorum_bps,
            status=_name(p.status, ProposalStatus, "PROPOSAL_STATUS_"),
            tally=ProposalTally.from_pb(p.tally),
            anchor=ResultAnchor.from_pb(p.anchor),
            cancel_reason=p.cancel_reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
            my_vote=Vote.from_pb(my_vote) if my_vote else None,
        )


@strawberry.type
class StandardsDocument:
    community_id: strawberry.ID
    kind: StandardsKind
    version: int
    content: str
    content_type: str
    content_hash: str
    proposal_id: strawberry.ID | None
    adopted_at: datetime

    @staticmethod
    def from_pb(doc: pb.StandardsDocument) -> StandardsDocument:
        return StandardsDocument(
            community_id=strawberry.ID(doc.community_id),
            kind=_name(doc.kind, StandardsKind, "STANDARDS_KIND_"),
            version=doc.version,
            content=doc.content,
            content_type=doc.content_type,
            content_hash=doc.content_hash,
            proposal_id=strawberry.ID(doc.proposal_id) if doc.proposal_id else None,
            adopted_at=doc.adopted_at,
        )


@strawberry.type
class CommunityPage:
    items: list[Community]
    next_page_token: str


@strawberry.type
class CommunityMemberPage:
    items: list[CommunityMember]
    next_page_token: str


@strawberry.type
class ProposalPage:
    items: list[Proposal]
    next_page_token: str


@strawberry.type
class StandardsPage:
    items: list[StandardsDocument]
    next_page_token: str


@strawberry.type
class CastVotePayload:
    vote: Vote
    tally: ProposalTally


@strawberry.type
class ExecuteProposalPayload:
    proposal: Proposal
    adopted_standards: StandardsDocument | None


@strawberry.type
class ProposalUpdate:
    kind: ProposalEventKind
    proposal: Proposal


# -- inputs ---------------------------------------------------------------------------------


@strawberry.input
class CommunityRulesInput:
    voting_method: VotingMethod
    voting_mode: VotingMode = VotingMode.OFF_CHAIN
    quorum_bps: int = 2_000
    approval_threshold_bps: int = 5_001
    default_voting_period_seconds: int = 7 * 24 * 3600
    proposer_role: CommunityRole = CommunityRole.MEMBER
    open_membership: bool = True
    quadratic_credit_budget: int = 0

    def to_pb(self) -> pb.CommunityRules:
        return pb.CommunityRules(
            voting_method=pb.VotingMethod.from_string(self.voting_method.name),
            voting_mode=pb.VotingMode.from_string(self.voting_mode.name),
            quorum_bps=_uint(self.quorum_bps),
            approval_threshold_bps=_uint(self.approval_threshold_bps),
            default_voting_period=timedelta(seconds=max(self.default_voting_period_seconds, 0)),
            proposer_role=pb.MemberRole.from_string(self.proposer_role.name),
            open_membership=self.open_membership,
            quadratic_credit_budget=_uint(self.quadratic_credit_budget),
        )


def _uint(value: int) -> int:
    """Negative numbers cannot travel as uint32: clamp to a value the service rejects
    with the field's own message."""
    return value if 0 <= value < 2**32 else 2**32 - 1


@strawberry.input
class CreateCommunityInput:
    name: str
    description: str = ""
    rules: CommunityRulesInput | None = None
    initial_standards: str = ""
    initial_validation_rules: str = ""
    request_id: str = ""


@strawberry.input
class ProposalOptionInput:
    label: str
    description: str = ""


@strawberry.input
class StandardsChangeInput:
    kind: StandardsKind
    content: str
    content_type: str = "text/markdown"


@strawberry.input
class CreateProposalInput:
    community_id: strawberry.ID
    title: str
    body: str = ""
    kind: ProposalKind = ProposalKind.GENERAL
    options: list[ProposalOptionInput] = strawberry.field(
        default_factory=list, description="Empty: For / Against / Abstain."
    )
    standards_change: StandardsChangeInput | None = None
    rules_change: CommunityRulesInput | None = None
    voting_starts_at: datetime | None = None
    voting_ends_at: datetime | None = None
    request_id: str = ""


@strawberry.input
class VoteChoiceInput:
    option_index: int
    weight: int = 0
    credits: int = 0


# -- resolvers ------------------------------------------------------------------------------


def governance(info: Info) -> pb.GovernanceServiceStub:
    info.context.require_token()
    return info.context.client(pb.GovernanceServiceStub)  # type: ignore[no-any-return]


@strawberry.type
class GovernanceQuery:
    @strawberry.field(description="A community, with the caller's membership.")
    async def community(self, info: Info, id: strawberry.ID) -> Community:
        response = await rpc(
            governance(info).get_community(pb.GetCommunityRequest(community_id=str(id)))
        )
        membership = response.membership if response.membership.community_id else None
        return Community.from_pb(response.community, membership)

    @strawberry.field(description="Communities by name; optionally only the caller's.")
    async def communities(
        self,
        info: Info,
        query: str = "",
        member_only: bool = False,
        first: int = 50,
        after: str = "",
    ) -> CommunityPage:
        response = await rpc(
            governance(info).list_communities(
                pb.ListCommunitiesRequest(
                    query=query, member_only=member_only, page_size=first, page_token=after
                )
            )
        )
        return CommunityPage(
            items=[Community.from_pb(c) for c in response.communities],
            next_page_token=response.next_page_token,
        )

    @strawberry.field(description="Members of a community (members only).")
    async def community_members(
        self,
        info: Info,
        community_id: strawberry.ID,
        role: CommunityRole | None = None,
        first: int = 50,
        after: str = "",
    ) -> CommunityMemberPage:
        request = pb.ListMembersRequest(
            community_id=str(community_id), page_size=first, page_token=after
        )
        if role is not None:
            request.role = pb.MemberRole.from_string(role.name)
        response = await rpc(governance(info).list_members(request))
        return CommunityMemberPage(
            items=[CommunityMember.from_pb(m) for m in response.members],
            next_page_token=response.next_page_token,
        )

    @strawberry.field(description="A proposal with its tally and the caller's vote.")
    async def proposal(self, info: Info, id: strawberry.ID) -> Proposal:
        response = await rpc(
            governance(info).get_proposal(pb.GetProposalRequest(proposal_id=str(id)))
        )
        my_vote = response.my_vote if response.my_vote.proposal_id else None
        return Proposal.from_pb(response.proposal, my_vote)

    @strawberry.field(description="A community's proposals, newest first.")
    async def proposals(
        self,
        info: Info,
        community_id: strawberry.ID,
        statuses: list[ProposalStatus] | None = None,
        first: int = 50,
        after: str = "",
    ) -> ProposalPage:
        response = await rpc(
            governance(info).list_proposals(
                pb.ListProposalsRequest(
                    community_id=str(community_id),
                    statuses=[pb.ProposalStatus.from_string(s.name) for s in statuses or []],
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return ProposalPage(
            items=[Proposal.from_pb(p) for p in response.proposals],
            next_page_token=response.next_page_token,
        )

    @strawberry.field(description="The tally of a proposal (provisional while active).")
    async def proposal_tally(self, info: Info, proposal_id: strawberry.ID) -> ProposalTally:
        response = await rpc(
            governance(info).get_tally(pb.GetTallyRequest(proposal_id=str(proposal_id)))
        )
        return ProposalTally.from_pb(response.tally)

    @strawberry.field(description="A version (default: the current one) of a standards doc.")
    async def community_standards(
        self, info: Info, community_id: strawberry.ID, kind: StandardsKind, version: int = 0
    ) -> StandardsDocument:
        response = await rpc(
            governance(info).get_standards(
                pb.GetStandardsRequest(
                    community_id=str(community_id),
                    kind=pb.StandardsKind.from_string(kind.name),
                    version=_uint(version),
                )
            )
        )
        return StandardsDocument.from_pb(response.document)

    @strawberry.field(description="Every adopted version of a standards doc, newest first.")
    async def community_standards_versions(
        self,
        info: Info,
        community_id: strawberry.ID,
        kind: StandardsKind,
        first: int = 50,
        after: str = "",
    ) -> StandardsPage:
        response = await rpc(
            governance(info).list_standards_versions(
                pb.ListStandardsVersionsRequest(
                    community_id=str(community_id),
                    kind=pb.StandardsKind.from_string(kind.name),
                    page_size=first,
                    page_token=after,
                )
            )
        )
        return StandardsPage(
            items=[StandardsDocument.from_pb(d) for d in response.documents],
            next_page_token=response.next_page_token,
        )


@strawberry.type
class GovernanceMutation:
    @strawberry.mutation(description="Create a community; the caller becomes its admin.")
    async def create_community(self, info: Info, input: CreateCommunityInput) -> Community:
        request = pb.CreateCommunityRequest(
            name=input.name,
            description=input.description,
            initial_standards=input.initial_standards,
            initial_validation_rules=input.initial_validation_rules,
            request_id=input.request_id,
        )
        if input.rules is not None:
            request.rules = input.rules.to_pb()
        response = await rpc(governance(info).create_community(request))
        return Community.from_pb(response.community)

    @strawberry.mutation(description="Join an open community (joining twice is a no-op).")
    async def join_community(self, info: Info, community_id: strawberry.ID) -> CommunityMember:
        response = await rpc(
            governance(info).join_community(pb.JoinCommunityRequest(community_id=str(community_id)))
        )
        return CommunityMember.from_pb(response.member)

    @strawberry.mutation(description="Leave a community; the last admin cannot.")
    async def leave_community(self, info: Info, community_id: strawberry.ID) -> bool:
        await rpc(
            governance(info).leave_community(
                pb.LeaveCommunityRequest(community_id=str(community_id))
            )
        )
        return True

    @strawberry.mutation(description="Set a member's role or add a member (admins only).")
    async def set_community_member_role(
        self,
        info: Info,
        community_id: strawberry.ID,
        user_id: strawberry.ID,
        role: CommunityRole,
    ) -> CommunityMember:
        response = await rpc(
            governance(info).set_member_role(
                pb.SetMemberRoleRequest(
                    community_id=str(community_id),
                    user_id=str(user_id),
                    role=pb.MemberRole.from_string(role.name),
                )
            )
        )
        return CommunityMember.from_pb(response.member)

    @strawberry.mutation(description="Create a proposal in a community.")
    async def create_proposal(self, info: Info, input: CreateProposalInput) -> Proposal:
        request = pb.CreateProposalRequest(
            community_id=str(input.community_id),
            title=input.title,
            body=input.body,
            kind=pb.ProposalKind.from_string(input.kind.name),
            options=[
                pb.ProposalOption(index=i, label=o.label, description=o.description)
                for i, o in enumerate(input.options)
            ],
            request_id=input.request_id,
        )
        if input.standards_change is not None:
            sc = input.standards_change
            request.standards_change = pb.StandardsChange(
                kind=pb.StandardsKind.from_string(sc.kind.name),
                content=sc.content,
                content_type=sc.content_type,
            )
        elif input.rules_change is not None:
            request.rules_change = input.rules_change.to_pb()
        if input.voting_starts_at is not None:
            request.voting_starts_at = input.voting_starts_at
        if input.voting_ends_at is not None:
            request.voting_ends_at = input.voting_ends_at
        response = await rpc(governance(info).create_proposal(request))
        return Proposal.from_pb(response.proposal)

    @strawberry.mutation(
        description="Vote on an active proposal. Retrying with the same requestId returns "
        "the original vote; a second, different vote is a CONFLICT."
    )
    async def cast_vote(
        self,
        info: Info,
        proposal_id: strawberry.ID,
        choices: list[VoteChoiceInput],
        request_id: str = "",
    ) -> CastVotePayload:
        response = await rpc(
            governance(info).cast_vote(
                pb.CastVoteRequest(
                    proposal_id=str(proposal_id),
                    choices=[
                        pb.VoteChoice(
                            option_index=_uint(c.option_index),
                            weight=_uint(c.weight),
                            credits=_uint(c.credits),
                        )
                        for c in choices
                    ],
                    request_id=request_id,
                )
            )
        )
        return CastVotePayload(
            vote=Vote.from_pb(response.vote), tally=ProposalTally.from_pb(response.tally)
        )

    @strawberry.mutation(description="Close voting after the window: final tally, anchored.")
    async def finalize_proposal(self, info: Info, proposal_id: strawberry.ID) -> Proposal:
        response = await rpc(
            governance(info).finalize_proposal(
                pb.FinalizeProposalRequest(proposal_id=str(proposal_id))
            )
        )
        return Proposal.from_pb(response.proposal)

    @strawberry.mutation(description="Apply a SUCCEEDED proposal (standards or rules).")
    async def execute_proposal(
        self, info: Info, proposal_id: strawberry.ID
    ) -> ExecuteProposalPayload:
        response = await rpc(
            governance(info).execute_proposal(
                pb.ExecuteProposalRequest(proposal_id=str(proposal_id))
            )
        )
        adopted = response.adopted_standards
        return ExecuteProposalPayload(
            proposal=Proposal.from_pb(response.proposal),
            adopted_standards=StandardsDocument.from_pb(adopted) if adopted.version else None,
        )

    @strawberry.mutation(description="Cancel a pending or active proposal.")
    async def cancel_proposal(
        self, info: Info, proposal_id: strawberry.ID, reason: str = ""
    ) -> Proposal:
        response = await rpc(
            governance(info).cancel_proposal(
                pb.CancelProposalRequest(proposal_id=str(proposal_id), reason=reason)
            )
        )
        return Proposal.from_pb(response.proposal)


@strawberry.type
class GovernanceSubscription:
    @strawberry.subscription(
        description="A proposal's votes, status changes and anchoring, each with the "
        "proposal as it is after the change (members of its community only)."
    )
    async def proposal_updated(
        self, info: Info, proposal_id: strawberry.ID
    ) -> AsyncGenerator[ProposalUpdate, None]:
        stream = governance(info).watch_proposal(
            pb.WatchProposalRequest(proposal_id=str(proposal_id))
        )
        async for update in rpc_stream(stream):
            yield ProposalUpdate(
                kind=_name(update.kind, ProposalEventKind, "PROPOSAL_EVENT_KIND_"),
                proposal=Proposal.from_pb(update.proposal),
            )
