"""gRPC: LRS client RPCs, their encoder, and the interceptor that authenticates an LRS
client on the xAPI RPCs.

The xAPI RPCs (`LRS_METHODS`: statements, attachments, documents, activities, agents,
and an institution's actor-link RPCs) also accept an LRS client's credentials, forwarded
by the gateway's /xapi resources as `x-keiko-lrs-authorization: Basic base64(key:secret)`.
The proto has no RPC for it, so those are declared public to the host's auth interceptor
(which still verifies a bearer token when one is sent) and `lrs_auth_interceptor` binds
the LRS client's principal; without either credential they answer UNAUTHENTICATED like
any other RPC. The interceptor must be installed innermost, after the kit's auth interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import grpc

from services.api.keiko.learning import v1 as pb
from services.kit.auth import acting_as, current_principal, optional_principal
from services.kit.errors import Unauthenticated
from services.kit.grpc.interceptors import AroundInterceptor, metadata_value
from services.learning.clients.storage import LrsClientRecord
from services.learning.common.basic_auth import basic_credentials

if TYPE_CHECKING:
    from services.learning.clients.usecases import LrsClients
    from services.learning.service import LearningService

SERVICE = "keiko.learning.v1.LearningService"
LRS_METADATA = "x-keiko-lrs-authorization"
LRS_METHODS = frozenset(
    {
        "RecordStatements",
        "GetStatement",
        "QueryStatements",
        "VoidStatement",
        "GetAttachments",
        "PutDocument",
        "GetDocument",
        "ListDocuments",
        "DeleteDocuments",
        "GetActivity",
        "GetPerson",
        "ConfirmActorLink",
        "ListActorLinks",
        "RevokeActorLink",
    }
)


class ClientsServicer:
    service: LearningService

    async def register_lrs_client(
        self, register_lrs_client_request: pb.RegisterLrsClientRequest
    ) -> pb.RegisterLrsClientResponse:
        r = register_lrs_client_request
        creds = await self.service.clients.register_lrs_client(
            current_principal(), r.name, r.request_id
        )
        return pb.RegisterLrsClientResponse(
            client=lrs_client_to_pb(creds.client), secret=creds.secret
        )

    async def list_lrs_clients(
        self, list_lrs_clients_request: pb.ListLrsClientsRequest
    ) -> pb.ListLrsClientsResponse:
        r = list_lrs_clients_request
        page = await self.service.clients.list_lrs_clients(
            current_principal(), r.page_size, r.page_token
        )
        return pb.ListLrsClientsResponse(
            clients=[lrs_client_to_pb(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_lrs_client(
        self, revoke_lrs_client_request: pb.RevokeLrsClientRequest
    ) -> pb.RevokeLrsClientResponse:
        client = await self.service.clients.revoke_lrs_client(
            current_principal(), revoke_lrs_client_request.client_id
        )
        return pb.RevokeLrsClientResponse(client=lrs_client_to_pb(client))


def lrs_auth_interceptor(clients: LrsClients) -> grpc.aio.ServerInterceptor:
    """Binds an LRS client's principal for the xAPI RPCs when the gateway forwards its
    Basic credentials in `x-keiko-lrs-authorization`. Installed after the auth interceptor."""

    @asynccontextmanager
    async def bound(
        details: grpc.HandlerCallDetails, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        value = metadata_value(context, LRS_METADATA)
        if value is None:
            yield
            return
        if optional_principal() is not None:
            raise Unauthenticated(f"send either authorization or {LRS_METADATA}, not both")
        key, secret = basic_credentials(value)
        principal = await clients.authenticate_lrs_client(key, secret)
        with acting_as(principal):
            yield

    return AroundInterceptor(bound, methods={f"/{SERVICE}/{m}" for m in LRS_METHODS})


def lrs_client_to_pb(client: LrsClientRecord) -> pb.LrsClient:
    message = pb.LrsClient(
        id=client.id,
        name=client.name,
        key=client.key,
        owner_id=client.owner_id,
        created_at=client.created_at,
    )
    if client.revoked_at is not None:
        message.revoked_at = client.revoked_at
    return message
