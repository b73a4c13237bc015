"""Communities: creating one, joining and leaving, members and their roles (a closed
community is joined by an admin adding the member)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from services.governance import domain as d
from services.governance.storage import GovernanceRepository
from services.governance.usecases.context import (
    GovernanceContext,
    community_of,
    new_id,
    object_id,
    require_reader,
)
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from services.kit.paging import Page, page_size


class Communities:
    def __init__(self, ctx: GovernanceContext) -> None:
        self.ctx = ctx

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
        self.ctx.require_mode_available(rules.voting_mode, "rules.voting_mode")
        if rid is not None:
            existing = await self._community_by_request(principal.user_id, rid)
            if existing is not None:
                return existing
        now = self.ctx.clock.now()
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
            async with self.ctx.db.transaction() as session:
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
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            found = await repo.community_by_request(user_id, rid)
            return None if found is None else await repo.get_community(found)

    async def get_community(
        self, principal: Principal, community_id: str
    ) -> tuple[d.Community, d.Member | None]:
        community_id = object_id(community_id, "community_id", "community")
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            community = await community_of(repo, community_id)
            return community, await repo.get_member(community_id, principal.user_id)

    async def list_communities(
        self,
        principal: Principal,
        *,
        query: str,
        member_only: bool,
        requested_size: int,
        page_token: str,
    ) -> Page[d.Community]:
        limit = page_size(requested_size)
        offset = d.PAGE_TOKENS.decode(page_token)
        query = d.bounded_text(query.strip(), "query", d.MAX_NAME_CHARS)
        async with self.ctx.db.session() as session:
            rows = await GovernanceRepository(session).list_communities(
                query=query,
                member_of=principal.user_id if member_only else None,
                offset=offset,
                limit=limit + 1,
            )
        return d.PAGE_TOKENS.page(rows, offset, limit)

    async def join_community(self, principal: Principal, community_id: str) -> d.Member:
        community_id = object_id(community_id, "community_id", "community")
        try:
            async with self.ctx.db.transaction() as session:
                repo = GovernanceRepository(session)
                community = await community_of(repo, community_id)
                existing = await repo.get_member(community_id, principal.user_id)
                if existing is not None:
                    return existing  # joining twice is a no-op
                if not community.rules.open_membership:
                    raise PermissionDenied(
                        "membership of this community is by approval: a community admin "
                        "adds members"
                    )
                await repo.insert_member(
                    community_id, principal.user_id, d.MemberRole.MEMBER, self.ctx.clock.now()
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
        async with self.ctx.db.session() as session:
            member = await GovernanceRepository(session).get_member(community_id, principal.user_id)
        if member is None:  # left again in between
            raise NotFound("membership not found")
        return member

    async def leave_community(self, principal: Principal, community_id: str) -> None:
        community_id = object_id(community_id, "community_id", "community")
        async with self.ctx.db.transaction() as session:
            repo = GovernanceRepository(session)
            await community_of(repo, community_id, lock=True)
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
    ) -> Page[d.Member]:
        community_id = object_id(community_id, "community_id", "community")
        limit = page_size(requested_size)
        offset = d.PAGE_TOKENS.decode(page_token)
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            await community_of(repo, community_id)
            await require_reader(repo, principal, community_id)
            rows = await repo.list_members(community_id, role, offset, limit + 1)
        return d.PAGE_TOKENS.page(rows, offset, limit)

    async def set_member_role(
        self, principal: Principal, community_id: str, user_id: str, role: d.MemberRole
    ) -> d.Member:
        community_id = object_id(community_id, "community_id", "community")
        user_id = d.required_text(user_id, "user_id", 64)
        async with self.ctx.db.transaction() as session:
            repo = GovernanceRepository(session)
            await community_of(repo, community_id, lock=True)
            caller = await repo.get_member(community_id, principal.user_id)
            if caller is None or caller.role is not d.MemberRole.ADMIN:
                raise PermissionDenied("only community admins may set member roles")
            target = await repo.get_member(community_id, user_id)
            if target is None:
                # Adds members (the way into a closed community).
                await repo.insert_member(community_id, user_id, role, self.ctx.clock.now())
            elif target.role is not role:
                if target.role is d.MemberRole.ADMIN and await repo.admin_count(community_id) <= 1:
                    raise FailedPrecondition(
                        "the last admin cannot step down: make another member admin first"
                    )
                await repo.set_role(community_id, user_id, role)
            member = await repo.get_member(community_id, user_id)
        assert member is not None
        return member
