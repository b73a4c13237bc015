"""Connections to other learning systems over GraphQL: LRS clients (Basic auth credentials
of the xAPI resource at /xapi) and webhook sources (Learning Locker, SCORM Cloud, Moodle,
Canvas pushing to /webhooks/{id}).

The learning service authorizes each call: a signed-in user registers clients and
sources for themself and lists their own; the owner (or an admin) revokes. A secret is
returned once, when it is made; only its hash is kept.
"""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from services.api.keiko.learning import v1 as pb

MAX_PAGE = 200


def learning(info: Info) -> pb.LearningServiceStub:
    return info.context.client(pb.LearningServiceStub)  # type: ignore[no-any-return]


def _when(value: datetime | None) -> datetime | None:
    return None if value is None or value.timestamp() == 0 else value


@strawberry.type(description="Basic auth credentials of the xAPI resource (/xapi).")
class LrsClient:
    id: strawberry.ID
    name: str
    key: str = strawberry.field(description="The Basic auth user name.")
    owner_id: strawberry.ID = strawberry.field(
        description="Statements the client posts have this user as their authority."
    )
    created_at: datetime
    revoked_at: datetime | None

    @staticmethod
    def from_pb(client: pb.LrsClient) -> LrsClient:
        return LrsClient(
            id=strawberry.ID(client.id),
            name=client.name,
            key=client.key,
            owner_id=strawberry.ID(client.owner_id),
            created_at=client.created_at,
            revoked_at=_when(client.revoked_at),
        )


@strawberry.type
class RegisteredLrsClient:
    client: LrsClient
    secret: str = strawberry.field(
        description="The Basic auth password. Shown once: only its hash is stored."
    )


@strawberry.type
class LrsClientConnection:
    nodes: list[LrsClient]
    end_cursor: str | None
    has_next_page: bool


@strawberry.enum(description="The platform a webhook source pushes from.")
class WebhookSourceKind(enum.Enum):
    LEARNING_LOCKER = "LEARNING_LOCKER"
    SCORM_CLOUD = "SCORM_CLOUD"
    MOODLE = "MOODLE"
    CANVAS = "CANVAS"


def _kind_from_pb(value: int) -> WebhookSourceKind | None:
    return WebhookSourceKind.__members__.get(str(pb.WebhookSourceKind(value).name))


@strawberry.type(description="An external LRS or LMS allowed to push statements by webhook.")
class WebhookSource:
    id: strawberry.ID
    name: str
    kind: WebhookSourceKind | None
    owner_id: strawberry.ID
    endpoint_path: str = strawberry.field(
        description="Path of the webhook endpoint to configure on the platform."
    )
    created_at: datetime
    revoked_at: datetime | None

    @staticmethod
    def from_pb(source: pb.WebhookSource) -> WebhookSource:
        return WebhookSource(
            id=strawberry.ID(source.id),
            name=source.name,
            kind=_kind_from_pb(source.kind),
            owner_id=strawberry.ID(source.owner_id),
            endpoint_path=source.endpoint_path,
            created_at=source.created_at,
            revoked_at=_when(source.revoked_at),
        )


@strawberry.type
class RegisteredWebhookSource:
    source: WebhookSource
    generated_secret: str = strawberry.field(
        description="The signing secret Keiko generated when none was given; shown once. "
        "Empty when you gave one."
    )


@strawberry.type
class WebhookSourceConnection:
    nodes: list[WebhookSource]
    end_cursor: str | None
    has_next_page: bool


@strawberry.input
class RegisterWebhookSourceInput:
    name: str = strawberry.field(
        description="The platform's URL (http or https), e.g. https://moodle.school.example."
    )
    kind: WebhookSourceKind
    secret: str = strawberry.field(
        default="", description="The platform's signing secret; empty: Keiko makes one."
    )
    course_id: strawberry.ID | None = strawberry.field(
        default=None, description="Course the imported statements are attached to."
    )
    request_id: str = strawberry.field(
        default="", description="Client-chosen id: a retried registration is not repeated."
    )


def _first(first: int) -> int:
    return max(1, min(first, MAX_PAGE))


@strawberry.type
class IntegrationsQuery:
    @strawberry.field(description="Your LRS clients (revoked ones included).")
    async def lrs_clients(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> LrsClientConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_lrs_clients(
                pb.ListLrsClientsRequest(page_size=_first(first), page_token=after or "")
            )
        )
        return LrsClientConnection(
            nodes=[LrsClient.from_pb(c) for c in reply.clients],
            end_cursor=reply.next_page_token or None,
            has_next_page=bool(reply.next_page_token),
        )

    @strawberry.field(description="Your webhook sources (revoked ones included).")
    async def webhook_sources(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> WebhookSourceConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_webhook_sources(
                pb.ListWebhookSourcesRequest(page_size=_first(first), page_token=after or "")
            )
        )
        return WebhookSourceConnection(
            nodes=[WebhookSource.from_pb(s) for s in reply.sources],
            end_cursor=reply.next_page_token or None,
            has_next_page=bool(reply.next_page_token),
        )


@strawberry.type
class IntegrationsMutation:
    @strawberry.mutation(
        description="Issue Basic auth credentials for the xAPI resource; the secret is "
        "returned once."
    )
    async def register_lrs_client(
        self, info: Info, name: str, request_id: str = ""
    ) -> RegisteredLrsClient:
        info.context.require_token()
        reply = await rpc(
            learning(info).register_lrs_client(
                pb.RegisterLrsClientRequest(name=name, request_id=request_id)
            )
        )
        return RegisteredLrsClient(client=LrsClient.from_pb(reply.client), secret=reply.secret)

    @strawberry.mutation(description="Revoke an LRS client: its credentials stop working.")
    async def revoke_lrs_client(self, info: Info, id: strawberry.ID) -> LrsClient:
        info.context.require_token()
        reply = await rpc(
            learning(info).revoke_lrs_client(pb.RevokeLrsClientRequest(client_id=str(id)))
        )
        return LrsClient.from_pb(reply.client)

    @strawberry.mutation(description="Allow an external LRS or LMS to push by webhook.")
    async def register_webhook_source(
        self, info: Info, input: RegisterWebhookSourceInput
    ) -> RegisteredWebhookSource:
        info.context.require_token()
        reply = await rpc(
            learning(info).register_webhook_source(
                pb.RegisterWebhookSourceRequest(
                    name=input.name,
                    kind=pb.WebhookSourceKind.from_string(input.kind.value),
                    secret=input.secret,
                    course_id=str(input.course_id or ""),
                    request_id=input.request_id,
                )
            )
        )
        return RegisteredWebhookSource(
            source=WebhookSource.from_pb(reply.source), generated_secret=reply.generated_secret
        )

    @strawberry.mutation(description="Revoke a webhook source: its pushes are refused.")
    async def revoke_webhook_source(self, info: Info, id: strawberry.ID) -> WebhookSource:
        info.context.require_token()
        reply = await rpc(
            learning(info).revoke_webhook_source(pb.RevokeWebhookSourceRequest(source_id=str(id)))
        )
        return WebhookSource.from_pb(reply.source)
