"""Per-request context: the caller's token, forwarded to services as gRPC metadata."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from strawberry.types.info import Info as StrawberryInfo

from gateway.errors import ClientError
from gateway.http import forwardable
from services.kit.grpc.client import stub


@dataclass
class GatewayContext:
    channel: grpc.aio.Channel
    # The caller's `authorization` value, forwarded verbatim: the service that verifies
    # it gives the exact reason when it is malformed, expired or forged.
    authorization: str | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user_agent: str = ""
    client_address: str = ""
    request: Any = None
    response: Any = None
    # The caller's token verified here (signature and expiry; the services check the rest):
    # it chooses the caller's GraphQL cost limit (gateway.extensions.OperationCostLimit).
    authenticated: bool = False
    # Filled by Strawberry from the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = None
    _stubs: dict[type, Any] = field(default_factory=dict)

    @staticmethod
    def new_request_id() -> str:
        return uuid.uuid4().hex

    def metadata(self) -> list[tuple[str, str]]:
        pairs = [("x-request-id", self.request_id)]
        if self.authorization:
            if not forwardable(self.authorization):
                # gRPC metadata is printable ASCII: say so rather than fail the call.
                raise ClientError(
                    "the authorization header is malformed (printable ASCII only)",
                    "UNAUTHENTICATED",
                )
            pairs.append(("authorization", self.authorization))
        if self.client_address:
            pairs.append(("x-forwarded-for", self.client_address))
        return pairs

    def client(self, stub_class: type) -> Any:
        """A typed stub of a service that forwards this caller's credentials."""
        if stub_class not in self._stubs:
            self._stubs[stub_class] = stub(stub_class, self.channel, metadata=self.metadata)
        return self._stubs[stub_class]

    def require_token(self) -> None:
        """Fail fast, without a round trip, when no credentials were sent at all."""
        if not self.authorization:
            raise ClientError("authentication required", "UNAUTHENTICATED")


Info = StrawberryInfo[GatewayContext, None]
