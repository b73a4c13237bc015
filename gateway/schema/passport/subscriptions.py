"""The `passportUpdated` and `interactionAnchored` subscriptions, both fed by WatchPassport,
so a subscriber only ever sees their own passport."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc_stream
from gateway.schema.passport.common import _enum_from, _on_wire, _Scope, passport_client
from gateway.schema.passport.timeline import PassportEntry
from services.api.keiko.passport import v1 as pb


@strawberry.enum
class PassportUpdateKind(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    ENTRY_ADDED = "ENTRY_ADDED"
    ENTRY_ANCHOR_CHANGED = "ENTRY_ANCHOR_CHANGED"
    PROFILE_UPDATED = "PROFILE_UPDATED"
    PRIVACY_UPDATED = "PRIVACY_UPDATED"


@strawberry.type
class PassportUpdate:
    passport_id: strawberry.ID
    kind: PassportUpdateKind
    entry: PassportEntry | None
    occurred_at: datetime


@strawberry.type
class PassportSubscription:
    # Both read WatchPassport; each converts an update once for every subscriber that
    # shares the caller's stream (gateway.shared_streams).
    @strawberry.subscription(description="Changes to your passport (entries, anchors, settings).")
    async def passport_updated(self, info: Info) -> AsyncGenerator[PassportUpdate, None]:
        info.context.require_token()
        client = passport_client(info)

        async def updates() -> AsyncIterator[PassportUpdate]:
            async for reply in rpc_stream(client.watch_passport(pb.WatchPassportRequest())):
                u = reply.update
                yield PassportUpdate(
                    passport_id=strawberry.ID(u.passport_id),
                    kind=_enum_from(u.kind, pb.PassportUpdateKind, PassportUpdateKind),  # type: ignore[arg-type]
                    entry=PassportEntry.from_pb(u.entry, _Scope()) if _on_wire(u.entry) else None,
                    occurred_at=u.occurred_at,
                )

        async for update in info.context.shared_stream("passportUpdated", updates):
            yield update

    @strawberry.subscription(description="Your entries as their anchors change on Keikochain.")
    async def interaction_anchored(self, info: Info) -> AsyncGenerator[PassportEntry, None]:
        info.context.require_token()
        client = passport_client(info)
        changed = pb.PassportUpdateKind.from_string("ENTRY_ANCHOR_CHANGED")

        async def anchored() -> AsyncIterator[PassportEntry]:
            async for reply in rpc_stream(client.watch_passport(pb.WatchPassportRequest())):
                u = reply.update
                if u.kind == changed and _on_wire(u.entry):
                    yield PassportEntry.from_pb(u.entry, _Scope())

        async for entry in info.context.shared_stream("interactionAnchored", anchored):
            yield entry
