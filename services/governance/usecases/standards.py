"""Community standards: the adopted documents and their versions (public for an open
community, members-only for a closed one)."""

from __future__ import annotations

from services.governance import domain as d
from services.governance.storage import GovernanceRepository
from services.governance.usecases.context import (
    GovernanceContext,
    object_id,
    require_standards_reader,
)
from services.kit.auth import Principal
from services.kit.errors import (
    NotFound,
)
from services.kit.paging import Page, page_size


class Standards:
    def __init__(self, ctx: GovernanceContext) -> None:
        self.ctx = ctx

    async def get_standards(
        self, principal: Principal, community_id: str, kind: d.StandardsKind, version: int
    ) -> d.StandardsDocument:
        """An open community's standards are public to any authenticated caller (anyone
        may check what its records are validated against); a closed community's are for
        its members and platform admins (issue 9)."""
        community_id = object_id(community_id, "community_id", "community")
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            await require_standards_reader(repo, principal, community_id)
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
    ) -> Page[d.StandardsDocument]:
        community_id = object_id(community_id, "community_id", "community")
        limit = page_size(requested_size)
        offset = d.PAGE_TOKENS.decode(page_token)
        async with self.ctx.db.session() as session:
            repo = GovernanceRepository(session)
            await require_standards_reader(repo, principal, community_id)
            rows = await repo.list_standards(community_id, kind, offset, limit + 1)
        return d.PAGE_TOKENS.page(rows, offset, limit)
