"""Proposals over GraphQL: reading, listing and tallies, creating, voting, finalizing,
executing and cancelling, and the `proposalUpdated` subscription (backed by the
WatchProposal server stream)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import rpc, rpc_stream
from gateway.schema.governance.common import (
    ProposalEventKind,
    ProposalKind,
    ProposalStatus,
    ResultAnchorStatus,
    StandardsKind,
    VotingMethod,
    VotingMode,
    enum_name,
    governance,
    uint32,
)
from gateway.schema.governance.communities import CommunityRules, CommunityRulesInput
from gateway.schema.governance.standards import StandardsDocument
from services.api.keiko.common import v1 as common
from services.api.keiko.governance import v1 as pb


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
                kind=enum_name(sc.kind, StandardsKind, "STANDARDS_KIND_"),
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
            kind=enum_name(p.kind, ProposalKind, "PROPOSAL_KIND_"),
            options=[
                ProposalOption(index=o.index, label=o.label, description=o.description)
                for o in p.options
            ],
            standards_change=standards_change,
            rules_change=rules_change,
            voting_starts_at=p.voting_starts_at,
            voting_ends_at=p.voting_ends_at,
            voting_method=enum_name(p.voting_method, VotingMethod, "VOTING_METHOD_"),
            voting_mode=enum_name(p.voting_mode, VotingMode, "VOTING_MODE_"),
            quorum_bps=p.quorum_bps,
            status=enum_name(p.status, ProposalStatus, "PROPOSAL_STATUS_"),
            tally=ProposalTally.from_pb(p.tally),
            anchor=ResultAnchor.from_pb(p.anchor),
            cancel_reason=p.cancel_reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
            my_vote=Vote.from_pb(my_vote) if my_vote else None,
        )


@strawberry.type
class ProposalPage:
    items: list[Proposal]
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


@strawberry.type
class ProposalsQuery:
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


@strawberry.type
class ProposalsMutation:
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
                            option_index=uint32(c.option_index),
                            weight=uint32(c.weight),
                            credits=uint32(c.credits),
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
                kind=enum_name(update.kind, ProposalEventKind, "PROPOSAL_EVENT_KIND_"),
                proposal=Proposal.from_pb(update.proposal),
            )
