"""Communities over GraphQL: reading and listing them, their members, creating one,
joining, leaving and member roles."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.governance.common import (
    CommunityRole,
    VotingMethod,
    VotingMode,
    enum_name,
    governance,
    uint32,
)
from services.api.keiko.governance import v1 as pb


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
            voting_method=enum_name(rules.voting_method, VotingMethod, "VOTING_METHOD_"),
            voting_mode=enum_name(rules.voting_mode, VotingMode, "VOTING_MODE_"),
            quorum_bps=rules.quorum_bps,
            approval_threshold_bps=rules.approval_threshold_bps,
            default_voting_period_seconds=int(rules.default_voting_period.total_seconds()),
            proposer_role=enum_name(rules.proposer_role, CommunityRole, "MEMBER_ROLE_"),
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
            role=enum_name(m.role, CommunityRole, "MEMBER_ROLE_"),
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
class CommunityPage:
    items: list[Community]
    next_page_token: str


@strawberry.type
class CommunityMemberPage:
    items: list[CommunityMember]
    next_page_token: str


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
            quorum_bps=uint32(self.quorum_bps),
            approval_threshold_bps=uint32(self.approval_threshold_bps),
            default_voting_period=timedelta(seconds=max(self.default_voting_period_seconds, 0)),
            proposer_role=pb.MemberRole.from_string(self.proposer_role.name),
            open_membership=self.open_membership,
            quadratic_credit_budget=uint32(self.quadratic_credit_budget),
        )


@strawberry.input
class CreateCommunityInput:
    name: str
    description: str = ""
    rules: CommunityRulesInput | None = None
    initial_standards: str = ""
    initial_validation_rules: str = ""
    request_id: str = ""


@strawberry.type
class CommunitiesQuery:
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


@strawberry.type
class CommunitiesMutation:
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
