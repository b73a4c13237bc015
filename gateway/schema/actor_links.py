"""Actor linking over GraphQL: a learner links the identities an institution knows them by
(an email address, an LMS account) to their Keiko account, so the statements that
institution stores about them reach their passport (services/learning/links/domain.py).

The learner creates a one-time code (`createActorLinkCode`) and gives it to the
institution, which confirms the identity it vouches for (`confirmActorLink`, or its LRS
client at POST /xapi/extensions/keiko/actor-links). Either side lists and revokes links.
"""

from __future__ import annotations

import json
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gateway.context import Info
from gateway.errors import ClientError, rpc
from gateway.schema.integrations import learning
from services.api.keiko.learning import v1 as pb

MAX_PAGE = 200


@strawberry.type(description="An external xAPI identity linked to a learner by an institution.")
class ActorLink:
    id: strawberry.ID
    learner_id: strawberry.ID
    institution_id: strawberry.ID = strawberry.field(
        description="The Keiko account that vouched for the identity: statements it stores "
        "about the identity enter the learner's passport, attested by it."
    )
    agent: JSON = strawberry.field(description="The linked xAPI Agent (one identifier).")
    created_at: datetime
    revoked_at: datetime | None

    @staticmethod
    def from_pb(link: pb.ActorLink) -> ActorLink:
        return ActorLink(
            id=strawberry.ID(link.id),
            learner_id=strawberry.ID(link.learner_id),
            institution_id=strawberry.ID(link.institution_id),
            agent=json.loads(link.agent_json),
            created_at=link.created_at,
            revoked_at=None if link.revoked_at.timestamp() == 0 else link.revoked_at,
        )


@strawberry.type
class ActorLinkCode:
    code: str = strawberry.field(description="Give it to the institution; shown once.")
    expires_at: datetime


@strawberry.type
class ActorLinkConnection:
    nodes: list[ActorLink]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class ActorLinksQuery:
    @strawberry.field(description="Your actor links, as learner and as vouching institution.")
    async def actor_links(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> ActorLinkConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_actor_links(
                pb.ListActorLinksRequest(
                    page_size=max(1, min(first, MAX_PAGE)), page_token=after or ""
                )
            )
        )
        return ActorLinkConnection(
            nodes=[ActorLink.from_pb(link) for link in reply.links],
            end_cursor=reply.next_page_token or None,
            has_next_page=bool(reply.next_page_token),
        )


@strawberry.type
class ActorLinksMutation:
    @strawberry.mutation(
        description="A one-time code (valid 24 hours) an institution uses to link the "
        "identity it knows you by to your account."
    )
    async def create_actor_link_code(self, info: Info) -> ActorLinkCode:
        info.context.require_token()
        reply = await rpc(learning(info).create_actor_link_code(pb.CreateActorLinkCodeRequest()))
        return ActorLinkCode(code=reply.code, expires_at=reply.expires_at)

    @strawberry.mutation(
        description="As an institution: link the identity you know a learner by (an xAPI "
        "Agent) to the learner who gave you this code."
    )
    async def confirm_actor_link(self, info: Info, agent: JSON, code: str) -> ActorLink:
        info.context.require_token()
        if not isinstance(agent, dict):
            raise ClientError("agent must be an xAPI Agent object", "BAD_USER_INPUT", field="agent")
        reply = await rpc(
            learning(info).confirm_actor_link(
                pb.ConfirmActorLinkRequest(agent_json=json.dumps(agent), code=code)
            )
        )
        return ActorLink.from_pb(reply.link)

    @strawberry.mutation(description="End a link: later statements stay in the LRS only.")
    async def revoke_actor_link(self, info: Info, id: strawberry.ID) -> ActorLink:
        info.context.require_token()
        reply = await rpc(
            learning(info).revoke_actor_link(pb.RevokeActorLinkRequest(link_id=str(id)))
        )
        return ActorLink.from_pb(reply.link)
