"""The keiko.governance.v1.GovernanceService gRPC servicer: decode, authorize, call, encode.

Every RPC needs an access token (no public methods). The composition root builds it with
`build_governance_servicer(runtime)`, which also registers the background jobs: the
outbox relay, the lifecycle advancer (activation and finalization driven by the clock)
the consumer that mirrors identity's proof-of-humanity events and the consumer of the chain
translator's anchoring events.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import betterproto

from services.api.keiko.common import v1 as common
from services.api.keiko.governance import v1 as pb
from services.governance import domain as d
from services.governance.anchoring import AnchorMirror
from services.governance.humanity import HumanityMirror
from services.governance.onchain import OnChainVoting
from services.governance.service import (
    CHANGE_ANCHOR,
    CHANGE_VOTE_CAST,
    WATCH_TOPICS,
    GovernanceService,
    NewProposal,
    ProposalView,
)
from services.governance.storage import outbox
from services.kit.auth import current_principal
from services.kit.errors import Unavailable, ValidationError
from services.kit.events import Event
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.logging import get_logger
from services.kit.runtime import BackgroundJob, ServiceRuntime

log = get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_METHODS = {
    pb.VotingMethod.SINGLE_CHOICE: d.VotingMethod.SINGLE_CHOICE,
    pb.VotingMethod.APPROVAL: d.VotingMethod.APPROVAL,
    pb.VotingMethod.WEIGHTED: d.VotingMethod.WEIGHTED,
    pb.VotingMethod.QUADRATIC: d.VotingMethod.QUADRATIC,
}
_MODES = {
    pb.VotingMode.OFF_CHAIN: d.VotingMode.OFF_CHAIN,
    pb.VotingMode.ON_CHAIN: d.VotingMode.ON_CHAIN,
}
_ROLES = {
    pb.MemberRole.MEMBER: d.MemberRole.MEMBER,
    pb.MemberRole.MODERATOR: d.MemberRole.MODERATOR,
    pb.MemberRole.ADMIN: d.MemberRole.ADMIN,
}
_KINDS = {
    pb.ProposalKind.GENERAL: d.ProposalKind.GENERAL,
    pb.ProposalKind.STANDARDS_CHANGE: d.ProposalKind.STANDARDS_CHANGE,
    pb.ProposalKind.RULES_CHANGE: d.ProposalKind.RULES_CHANGE,
}
_STATUSES = {
    pb.ProposalStatus.PENDING: d.ProposalStatus.PENDING,
    pb.ProposalStatus.ACTIVE: d.ProposalStatus.ACTIVE,
    pb.ProposalStatus.DEFEATED: d.ProposalStatus.DEFEATED,
    pb.ProposalStatus.SUCCEEDED: d.ProposalStatus.SUCCEEDED,
    pb.ProposalStatus.EXECUTED: d.ProposalStatus.EXECUTED,
    pb.ProposalStatus.CANCELED: d.ProposalStatus.CANCELED,
}
_STANDARDS = {
    pb.StandardsKind.COMMUNITY_STANDARDS: d.StandardsKind.COMMUNITY_STANDARDS,
    pb.StandardsKind.VALIDATION_RULES: d.StandardsKind.VALIDATION_RULES,
}
_ANCHOR: dict[d.AnchorStatus, common.AnchorStatus] = {
    d.AnchorStatus.NONE: common.AnchorStatus(common.AnchorStatus.UNSPECIFIED),
    d.AnchorStatus.PENDING: common.AnchorStatus(common.AnchorStatus.PENDING),
    d.AnchorStatus.ANCHORED: common.AnchorStatus(common.AnchorStatus.ANCHORED),
    d.AnchorStatus.FAILED: common.AnchorStatus(common.AnchorStatus.FAILED),
}


def _inverse(mapping: dict[Any, Any]) -> dict[Any, Any]:
    return {v: k for k, v in mapping.items()}


_METHODS_PB = _inverse(_METHODS)
_MODES_PB = _inverse(_MODES)
_ROLES_PB = _inverse(_ROLES)
_KINDS_PB = _inverse(_KINDS)
_STATUSES_PB = _inverse(_STATUSES)
_STANDARDS_PB = _inverse(_STANDARDS)


def _enum(mapping: dict[Any, Any], value: int, field_path: str) -> Any:
    for key, found in mapping.items():
        if int(key) == int(value):
            return found
    raise ValidationError(field_path, "must be set to a known value")


def _time(value: datetime) -> datetime | None:
    """An unset google.protobuf.Timestamp decodes as the epoch."""
    return None if value is None or value == _EPOCH else value


# -- decoding -------------------------------------------------------------------------------


def rules_from_pb(rules: pb.CommunityRules, path: str) -> d.CommunityRules:
    method = _enum(_METHODS, rules.voting_method, f"{path}.voting_method")
    budget = rules.quadratic_credit_budget
    if method is d.VotingMethod.QUADRATIC and budget == 0:
        budget = d.DEFAULT_QUADRATIC_BUDGET
    period = rules.default_voting_period or timedelta(0)
    return d.CommunityRules(
        voting_method=method,
        voting_mode=_enum(_MODES, rules.voting_mode, f"{path}.voting_mode"),
        quorum_bps=rules.quorum_bps,
        approval_threshold_bps=rules.approval_threshold_bps or 5_001,
        default_voting_period=period if period > timedelta(0) else timedelta(days=7),
        proposer_role=(
            _enum(_ROLES, rules.proposer_role, f"{path}.proposer_role")
            if rules.proposer_role
            else d.MemberRole.MEMBER
        ),
        open_membership=rules.open_membership,
        quadratic_credit_budget=budget,
    )


def choices_from_pb(choices: list[pb.VoteChoice]) -> list[d.Choice]:
    return [d.Choice(c.option_index, c.weight, c.credits) for c in choices]


# -- encoding -------------------------------------------------------------------------------


def rules_to_pb(rules: d.CommunityRules) -> pb.CommunityRules:
    return pb.CommunityRules(
        voting_method=_METHODS_PB[rules.voting_method],
        voting_mode=_MODES_PB[rules.voting_mode],
        quorum_bps=rules.quorum_bps,
        approval_threshold_bps=rules.approval_threshold_bps,
        default_voting_period=rules.default_voting_period,
        proposer_role=_ROLES_PB[rules.proposer_role],
        open_membership=rules.open_membership,
        quadratic_credit_budget=rules.quadratic_credit_budget,
    )


def community_to_pb(c: d.Community) -> pb.Community:
    return pb.Community(
        id=c.id,
        name=c.name,
        description=c.description,
        rules=rules_to_pb(c.rules),
        created_by=c.created_by,
        member_count=c.member_count,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def member_to_pb(m: d.Member) -> pb.Member:
    return pb.Member(
        community_id=m.community_id,
        user_id=m.user_id,
        role=_ROLES_PB[m.role],
        human_verified=m.human_verified,
        joined_at=m.joined_at,
    )


def tally_to_pb(view: ProposalView) -> pb.Tally:
    tally = view.tally
    message = pb.Tally(
        proposal_id=view.proposal.id,
        options=[
            pb.OptionTally(option_index=o.option_index, voters=o.voters, votes=o.votes)
            for o in tally.options
        ],
        total_voters=tally.total_voters,
        eligible_voters=tally.eligible_voters,
        quorum_reached=tally.quorum_reached,
        final=view.tally_final,
        as_of=view.as_of,
    )
    if tally.leading_option_index is not None:
        message.leading_option_index = tally.leading_option_index
    return message


def anchor_to_pb(anchor: d.Anchor) -> common.AnchorState:
    message = common.AnchorState(
        status=_ANCHOR[anchor.status],
        batch_id=anchor.batch_id,
        merkle_root=anchor.merkle_root,
        block_number=anchor.block_number,
        tx_hash=anchor.tx_hash,
        failure_reason=anchor.failure_reason,
    )
    if anchor.anchored_at is not None:
        message.anchored_at = anchor.anchored_at
    return message


def proposal_to_pb(view: ProposalView) -> pb.Proposal:
    p = view.proposal
    message = pb.Proposal(
        id=p.id,
        community_id=p.community_id,
        author_id=p.author_id,
        title=p.title,
        body=p.body,
        kind=_KINDS_PB[p.kind],
        options=[
            pb.ProposalOption(index=o.index, label=o.label, description=o.description)
            for o in p.options
        ],
        voting_starts_at=p.voting_starts_at,
        voting_ends_at=p.voting_ends_at,
        voting_method=_METHODS_PB[p.voting_method],
        voting_mode=_MODES_PB[p.voting_mode],
        quorum_bps=p.quorum_bps,
        status=_STATUSES_PB[view.status],
        tally=tally_to_pb(view),
        onchain_proposal_id=p.onchain_proposal_id,
        anchor=anchor_to_pb(p.anchor),
        created_at=p.created_at,
        updated_at=p.updated_at,
        cancel_reason=p.cancel_reason,
    )
    if p.standards_change is not None:
        message.standards_change = standards_change_to_pb(p.standards_change)
    elif p.rules_change is not None:
        message.rules_change = rules_to_pb(p.rules_change)
    return message


def standards_change_to_pb(change: d.StandardsChange) -> pb.StandardsChange:
    return pb.StandardsChange(
        kind=_STANDARDS_PB[change.kind], content=change.content, content_type=change.content_type
    )


def vote_to_pb(vote: d.Vote) -> pb.Vote:
    return pb.Vote(
        proposal_id=vote.proposal_id,
        voter_id=vote.voter_id,
        choices=[
            pb.VoteChoice(option_index=c.option_index, weight=c.weight, credits=c.credits)
            for c in vote.choices
        ],
        cast_at=vote.cast_at,
        tx_hash=vote.tx_hash,
    )


def standards_to_pb(doc: d.StandardsDocument) -> pb.StandardsDocument:
    return pb.StandardsDocument(
        community_id=doc.community_id,
        kind=_STANDARDS_PB[doc.kind],
        version=doc.version,
        content=doc.content,
        content_type=doc.content_type,
        content_hash=doc.content_hash,
        proposal_id=doc.proposal_id,
        adopted_at=doc.adopted_at,
        anchor=common.AnchorState(),
    )


# -- the servicer ---------------------------------------------------------------------------


class GovernanceServicer(pb.GovernanceServiceBase):
    public_methods: frozenset[str] = frozenset()

    def __init__(self, service: GovernanceService, fanout: EventFanout | None = None) -> None:
        self.service = service
        self.fanout = fanout

    # communities

    async def create_community(
        self, create_community_request: pb.CreateCommunityRequest
    ) -> pb.CreateCommunityResponse:
        request = create_community_request
        rules = (
            rules_from_pb(request.rules, "rules")
            if betterproto.serialized_on_wire(request.rules)
            else d.CommunityRules()
        )
        community = await self.service.communities.create_community(
            current_principal(),
            name=request.name,
            description=request.description,
            rules=rules,
            initial_standards=request.initial_standards,
            initial_validation_rules=request.initial_validation_rules,
            request_id=request.request_id,
        )
        return pb.CreateCommunityResponse(community=community_to_pb(community))

    async def get_community(
        self, get_community_request: pb.GetCommunityRequest
    ) -> pb.GetCommunityResponse:
        community, member = await self.service.communities.get_community(
            current_principal(), get_community_request.community_id
        )
        response = pb.GetCommunityResponse(community=community_to_pb(community))
        if member is not None:
            response.membership = member_to_pb(member)
        return response

    async def list_communities(
        self, list_communities_request: pb.ListCommunitiesRequest
    ) -> pb.ListCommunitiesResponse:
        request = list_communities_request
        page = await self.service.communities.list_communities(
            current_principal(),
            query=request.query,
            member_only=request.member_only,
            requested_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListCommunitiesResponse(
            communities=[community_to_pb(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def join_community(
        self, join_community_request: pb.JoinCommunityRequest
    ) -> pb.JoinCommunityResponse:
        member = await self.service.communities.join_community(
            current_principal(), join_community_request.community_id
        )
        return pb.JoinCommunityResponse(member=member_to_pb(member))

    async def leave_community(
        self, leave_community_request: pb.LeaveCommunityRequest
    ) -> pb.LeaveCommunityResponse:
        await self.service.communities.leave_community(
            current_principal(), leave_community_request.community_id
        )
        return pb.LeaveCommunityResponse()

    async def list_members(
        self, list_members_request: pb.ListMembersRequest
    ) -> pb.ListMembersResponse:
        request = list_members_request
        role = _enum(_ROLES, request.role, "role") if request.role else None
        page = await self.service.communities.list_members(
            current_principal(), request.community_id, role, request.page_size, request.page_token
        )
        return pb.ListMembersResponse(
            members=[member_to_pb(m) for m in page.items], next_page_token=page.next_page_token
        )

    async def set_member_role(
        self, set_member_role_request: pb.SetMemberRoleRequest
    ) -> pb.SetMemberRoleResponse:
        request = set_member_role_request
        role = _enum(_ROLES, request.role, "role")
        member = await self.service.communities.set_member_role(
            current_principal(), request.community_id, request.user_id, role
        )
        return pb.SetMemberRoleResponse(member=member_to_pb(member))

    # proposals

    async def create_proposal(
        self, create_proposal_request: pb.CreateProposalRequest
    ) -> pb.CreateProposalResponse:
        request = create_proposal_request
        which, _ = betterproto.which_one_of(request, "change")
        standards_change: d.StandardsChange | None = None
        rules_change: d.CommunityRules | None = None
        if which == "standards_change":
            change = request.standards_change
            standards_change = d.StandardsChange(
                _enum(_STANDARDS, change.kind, "standards_change.kind"),
                change.content,
                change.content_type,
            )
        elif which == "rules_change":
            rules_change = rules_from_pb(request.rules_change, "rules_change")
        view = await self.service.proposals.create_proposal(
            current_principal(),
            NewProposal(
                community_id=request.community_id,
                title=request.title,
                body=request.body,
                kind=_enum(_KINDS, request.kind, "kind") if request.kind else None,
                options=[
                    d.ProposalOption(o.index, o.label, o.description) for o in request.options
                ],
                standards_change=standards_change,
                rules_change=rules_change,
                voting_starts_at=_time(request.voting_starts_at),
                voting_ends_at=_time(request.voting_ends_at),
                request_id=request.request_id,
            ),
        )
        return pb.CreateProposalResponse(proposal=proposal_to_pb(view))

    async def get_proposal(
        self, get_proposal_request: pb.GetProposalRequest
    ) -> pb.GetProposalResponse:
        view, vote = await self.service.proposals.get_proposal(
            current_principal(), get_proposal_request.proposal_id
        )
        response = pb.GetProposalResponse(proposal=proposal_to_pb(view))
        if vote is not None:
            response.my_vote = vote_to_pb(vote)
        return response

    async def list_proposals(
        self, list_proposals_request: pb.ListProposalsRequest
    ) -> pb.ListProposalsResponse:
        request = list_proposals_request
        statuses = [_enum(_STATUSES, s, f"statuses[{i}]") for i, s in enumerate(request.statuses)]
        page = await self.service.proposals.list_proposals(
            current_principal(),
            request.community_id,
            statuses,
            request.page_size,
            request.page_token,
        )
        return pb.ListProposalsResponse(
            proposals=[proposal_to_pb(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def cast_vote(self, cast_vote_request: pb.CastVoteRequest) -> pb.CastVoteResponse:
        request = cast_vote_request
        vote, view = await self.service.voting.cast_vote(
            current_principal(),
            request.proposal_id,
            choices_from_pb(request.choices),
            request.request_id,
        )
        return pb.CastVoteResponse(vote=vote_to_pb(vote), tally=tally_to_pb(view))

    async def get_tally(self, get_tally_request: pb.GetTallyRequest) -> pb.GetTallyResponse:
        view = await self.service.proposals.get_tally(
            current_principal(), get_tally_request.proposal_id
        )
        return pb.GetTallyResponse(tally=tally_to_pb(view))

    async def finalize_proposal(
        self, finalize_proposal_request: pb.FinalizeProposalRequest
    ) -> pb.FinalizeProposalResponse:
        view = await self.service.lifecycle.finalize_proposal(
            current_principal(), finalize_proposal_request.proposal_id
        )
        return pb.FinalizeProposalResponse(proposal=proposal_to_pb(view))

    async def execute_proposal(
        self, execute_proposal_request: pb.ExecuteProposalRequest
    ) -> pb.ExecuteProposalResponse:
        executed = await self.service.lifecycle.execute_proposal(
            current_principal(), execute_proposal_request.proposal_id
        )
        response = pb.ExecuteProposalResponse(proposal=proposal_to_pb(executed.proposal))
        if executed.adopted is not None:
            response.adopted_standards = standards_to_pb(executed.adopted)
        return response

    async def cancel_proposal(
        self, cancel_proposal_request: pb.CancelProposalRequest
    ) -> pb.CancelProposalResponse:
        request = cancel_proposal_request
        view = await self.service.lifecycle.cancel_proposal(
            current_principal(), request.proposal_id, request.reason
        )
        return pb.CancelProposalResponse(proposal=proposal_to_pb(view))

    async def watch_proposal(
        self, watch_proposal_request: pb.WatchProposalRequest
    ) -> AsyncIterator[pb.WatchProposalResponse]:
        """Members of the proposal's community watch it: every vote, status change and
        anchoring update, each with the proposal as it is after the change. Membership is
        checked again on every event: a member who leaves stops receiving."""
        principal = current_principal()
        proposal_id = watch_proposal_request.proposal_id
        await self.service.proposals.watchable(principal, proposal_id)
        if self.fanout is None:
            raise Unavailable("watching is not enabled on this server")

        def concerns(event: Event) -> bool:
            return event.payload.get("proposal_id") == proposal_id

        async with self.fanout.listen(list(WATCH_TOPICS), concerns) as events:
            async for event in events:
                view = await self.service.proposals.watchable(principal, proposal_id)
                yield pb.WatchProposalResponse(
                    kind=_event_kind(event), proposal=proposal_to_pb(view)
                )

    # standards

    async def get_standards(
        self, get_standards_request: pb.GetStandardsRequest
    ) -> pb.GetStandardsResponse:
        request = get_standards_request
        doc = await self.service.standards.get_standards(
            current_principal(),
            request.community_id,
            _enum(_STANDARDS, request.kind, "kind"),
            request.version,
        )
        return pb.GetStandardsResponse(document=standards_to_pb(doc))

    async def list_standards_versions(
        self, list_standards_versions_request: pb.ListStandardsVersionsRequest
    ) -> pb.ListStandardsVersionsResponse:
        request = list_standards_versions_request
        page = await self.service.standards.list_standards_versions(
            current_principal(),
            request.community_id,
            _enum(_STANDARDS, request.kind, "kind"),
            request.page_size,
            request.page_token,
        )
        return pb.ListStandardsVersionsResponse(
            documents=[standards_to_pb(doc) for doc in page.items],
            next_page_token=page.next_page_token,
        )


def _event_kind(event: Event) -> pb.ProposalEventKind:
    change = event.payload.get("change")
    if change == CHANGE_VOTE_CAST:
        return pb.ProposalEventKind(pb.ProposalEventKind.VOTE_CAST)
    if change == CHANGE_ANCHOR:
        return pb.ProposalEventKind(pb.ProposalEventKind.ANCHOR_CHANGED)
    return pb.ProposalEventKind(pb.ProposalEventKind.STATUS_CHANGED)


# -- composition root -------------------------------------------------------------------------

LIFECYCLE_INTERVAL_S = 5.0


def build_governance_servicer(
    runtime: ServiceRuntime, *, onchain: OnChainVoting | None = None
) -> GovernanceServicer:
    """Composition-root factory (keiko.registry): the servicer on the runtime's database,
    clock, bus and fanout, plus its four background jobs. `onchain` (e.g.
    `ContractVoting(connect=...)` on the governance contract) enables VOTING_MODE_ON_CHAIN;
    without it that mode is refused with FAILED_PRECONDITION."""
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    service = GovernanceService(
        runtime.database, runtime.clock, notify=relay.notify, onchain=onchain
    )
    mirror = HumanityMirror(runtime.database, runtime.clock)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    runtime.run_in_background("governance.outbox_relay", relay.run)
    runtime.run_in_background("governance.lifecycle", lifecycle_job(service))
    runtime.run_in_background("governance.humanity_mirror", mirror.job(runtime.event_bus, consumer))
    anchors = AnchorMirror(runtime.database, runtime.clock)
    runtime.run_in_background("governance.anchor_mirror", anchors.job(runtime.event_bus, consumer))
    return GovernanceServicer(service, runtime.fanout)


def lifecycle_job(
    service: GovernanceService, interval_s: float = LIFECYCLE_INTERVAL_S
) -> BackgroundJob:
    """Every `interval_s`: open voting windows that started and finalize proposals whose
    window ended (FinalizeProposal does the same on demand). Any replica may run it:
    each step is a transaction that re-checks the status under lock."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                changed = await service.lifecycle.advance()
                if changed:
                    log.info("governance.lifecycle_advanced", proposals=changed)
            except Exception:
                log.exception("governance.lifecycle_failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue

    return run
