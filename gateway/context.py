"""Per-request context: the caller's token, forwarded to services as gRPC metadata."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from strawberry.types.info import Info as StrawberryInfo

from gateway.errors import ClientError
from gateway.http import forwardable
from gateway.shared_streams import SharedStreams
from services.kit.grpc.client import stub

T = TypeVar("T")


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
    # The gateway's upstream streams shared by subscriptions (None: each opens its own).
    streams: SharedStreams | None = None
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

    def shared_stream(
        self, key: Hashable, open_stream: Callable[[], AsyncIterable[T]]
    ) -> AsyncIterable[T]:
        """The items of ``open_stream()`` (a server stream made with this caller's
        credentials, converted), read from the one stream this gateway has open for
        ``key`` and the same credentials when there is one (gateway.shared_streams)."""
        if self.streams is None or not self.authorization:
            return open_stream()
        return self.streams.subscribe(key, self.authorization, open_stream)

    def require_token(self) -> None:
        """Fail fast, without a round trip, when no credentials were sent at all."""
        if not self.authorization:
            raise ClientError("authentication required", "UNAUTHENTICATED")


Info = StrawberryInfo[GatewayContext, None]
