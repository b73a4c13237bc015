"""gRPC: actor link RPCs (CreateActorLinkCode, ConfirmActorLink, ListActorLinks,
RevokeActorLink) and their encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.learning.links.storage import ActorLinkRecord

if TYPE_CHECKING:
    from services.learning.service import LearningService


class LinksServicer:
    service: LearningService

    async def create_actor_link_code(
        self, create_actor_link_code_request: pb.CreateActorLinkCodeRequest
    ) -> pb.CreateActorLinkCodeResponse:
        code, expires = await self.service.links.create_link_code(current_principal())
        return pb.CreateActorLinkCodeResponse(code=code, expires_at=expires)

    async def confirm_actor_link(
        self, confirm_actor_link_request: pb.ConfirmActorLinkRequest
    ) -> pb.ConfirmActorLinkResponse:
        r = confirm_actor_link_request
        link = await self.service.links.confirm(current_principal(), r.agent_json, r.code)
        return pb.ConfirmActorLinkResponse(link=actor_link_to_pb(link))

    async def list_actor_links(
        self, list_actor_links_request: pb.ListActorLinksRequest
    ) -> pb.ListActorLinksResponse:
        r = list_actor_links_request
        page = await self.service.links.list_links(current_principal(), r.page_size, r.page_token)
        return pb.ListActorLinksResponse(
            links=[actor_link_to_pb(link) for link in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_actor_link(
        self, revoke_actor_link_request: pb.RevokeActorLinkRequest
    ) -> pb.RevokeActorLinkResponse:
        link = await self.service.links.revoke(
            current_principal(), revoke_actor_link_request.link_id
        )
        return pb.RevokeActorLinkResponse(link=actor_link_to_pb(link))


def actor_link_to_pb(link: ActorLinkRecord) -> pb.ActorLink:
    message = pb.ActorLink(
        id=link.id,
        learner_id=link.learner_id,
        institution_id=link.institution_id,
        agent_json=link.agent_json,
        created_at=link.created_at,
    )
    if link.revoked_at is not None:
        message.revoked_at = link.revoked_at
    return message
