"""Share links over GraphQL: the owner's links (tokens shown once, at creation) and a
passport read through a link."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.passport.common import PageInfo, _first, _Scope, _when, passport_client
from gateway.schema.passport.privacy import Disclosure, DisclosureInput
from gateway.schema.passport.timeline import (
    Passport,
    TimelineConnection,
    _connection,
    groups_of,
)
from services.api.keiko.passport import v1 as pb


@strawberry.type
class ShareLink:
    id: strawberry.ID
    label: str
    scope: Disclosure
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    view_count: int

    @staticmethod
    def from_pb(link: pb.ShareLink) -> ShareLink:
        return ShareLink(
            id=strawberry.ID(link.id),
            label=link.label,
            scope=Disclosure.from_pb(link.scope),
            created_at=link.created_at,
            expires_at=_when(link.expires_at),
            revoked_at=_when(link.revoked_at),
            view_count=link.view_count,
        )


@strawberry.type
class ShareLinkConnection:
    nodes: list[ShareLink]
    page_info: PageInfo


@strawberry.type
class CreatedShareLink:
    link: ShareLink
    token: str = strawberry.field(
        description="Shown once: only its hash is stored (empty on a request-id replay)."
    )
    url: str


@strawberry.input
class CreateShareLinkInput:
    label: str = ""
    scope: DisclosureInput | None = strawberry.field(
        default=None, description="Null: your share-link disclosure."
    )
    expires_at: datetime | None = None
    request_id: str = strawberry.field(
        default="", description="Client-chosen id: a retried creation returns the same link."
    )


@strawberry.type
class SharedPassport:
    passport: Passport
    timeline: TimelineConnection
    expires_at: datetime | None


@strawberry.type
class ShareLinksQuery:
    @strawberry.field(description="Your share links, newest first (never their tokens).")
    async def share_links(
        self, info: Info, include_inactive: bool = False, first: int = 50, after: str | None = None
    ) -> ShareLinkConnection:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).list_share_links(
                pb.ListShareLinksRequest(
                    include_inactive=include_inactive,
                    page_size=_first(first),
                    page_token=after or "",
                )
            )
        )
        token = reply.next_page_token
        return ShareLinkConnection(
            nodes=[ShareLink.from_pb(link) for link in reply.links],
            page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
        )

    @strawberry.field(description="A passport through a share link (public).")
    async def shared_passport(
        self, info: Info, token: str, first: int = 50, after: str | None = None
    ) -> SharedPassport:
        reply = await rpc(
            passport_client(info).get_shared_passport(
                pb.GetSharedPassportRequest(
                    token=token, page_size=_first(first), page_token=after or "", groups_json=True
                )
            )
        )
        scope = _Scope(share_token=token)
        return SharedPassport(
            passport=Passport.from_pb(reply.passport, scope),
            timeline=_connection(groups_of(reply, scope), reply.next_page_token),
            expires_at=_when(reply.expires_at),
        )


@strawberry.type
class ShareLinksMutation:
    @strawberry.mutation(description="Create a share link; its token is returned only here.")
    async def create_share_link(self, info: Info, input: CreateShareLinkInput) -> CreatedShareLink:
        info.context.require_token()
        request = pb.CreateShareLinkRequest(label=input.label, request_id=input.request_id)
        if input.scope is not None:
            request.scope = input.scope.to_pb()
        if input.expires_at is not None:
            request.expires_at = input.expires_at
        reply = await rpc(passport_client(info).create_share_link(request))
        return CreatedShareLink(
            link=ShareLink.from_pb(reply.link), token=reply.token, url=reply.url
        )

    @strawberry.mutation(description="Revoke one of your share links (idempotent).")
    async def revoke_share_link(self, info: Info, id: strawberry.ID) -> ShareLink:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).revoke_share_link(pb.RevokeShareLinkRequest(link_id=str(id)))
        )
        return ShareLink.from_pb(reply.link)
