"""Community standards over GraphQL: a version of a standards document and every
adopted version."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.governance.common import StandardsKind, enum_name, governance, uint32
from services.api.keiko.governance import v1 as pb


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
            kind=enum_name(doc.kind, StandardsKind, "STANDARDS_KIND_"),
            version=doc.version,
            content=doc.content,
            content_type=doc.content_type,
            content_hash=doc.content_hash,
            proposal_id=strawberry.ID(doc.proposal_id) if doc.proposal_id else None,
            adopted_at=doc.adopted_at,
        )


@strawberry.type
class StandardsPage:
    items: list[StandardsDocument]
    next_page_token: str


@strawberry.type
class StandardsQuery:
    @strawberry.field(description="A version (default: the current one) of a standards doc.")
    async def community_standards(
        self, info: Info, community_id: strawberry.ID, kind: StandardsKind, version: int = 0
    ) -> StandardsDocument:
        response = await rpc(
            governance(info).get_standards(
                pb.GetStandardsRequest(
                    community_id=str(community_id),
                    kind=pb.StandardsKind.from_string(kind.name),
                    version=uint32(version),
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
