"""The invitation RPCs (ListInvitations, RespondToInvitation, WatchInvitations), written
once: a servicer of a service that owns invitations mixes `InvitationRpcs` in before its
generated base class and points it at its service (an `InvitationOwner`) and at its
generated messages. Each service's proto declares the three RPCs with its own request and
response messages (buf wants them unique per RPC); they carry the shared
`keiko.common.v1.Invitation`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from types import ModuleType
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.keiko.common import v1 as common_pb
from services.kit.auth import Principal, current_principal
from services.kit.errors import Unavailable, ValidationError
from services.kit.events import Event
from services.kit.events.fanout import EventFanout
from services.kit.invitations.domain import (
    Invitation,
    InvitationKind,
    InvitationStatus,
    decode_cursor,
    encode_cursor,
)
from services.kit.invitations.storage import Invitations
from services.kit.paging import page_size

KIND_TO_PB = {k: common_pb.InvitationKind.from_string(k.name) for k in InvitationKind}
STATUS_TO_PB = {s: common_pb.InvitationStatus.from_string(s.name) for s in InvitationStatus}
STATUS_FROM_PB = {int(v): k for k, v in STATUS_TO_PB.items()}


def invitation_to_pb(invitation: Invitation) -> common_pb.Invitation:
    message = common_pb.Invitation(
        id=invitation.id,
        kind=KIND_TO_PB[invitation.kind],
        subject_id=invitation.subject_id,
        inviter_id=invitation.inviter_id,
        invitee_id=invitation.invitee_id,
        role=invitation.role,
        status=STATUS_TO_PB[invitation.status],
        created_at=invitation.created_at,
    )
    if invitation.responded_at is not None:
        message.responded_at = invitation.responded_at
    return message


def status_to_pb(status: InvitationStatus | None) -> common_pb.InvitationStatus:
    """UNSPECIFIED where nobody was invited."""
    if status is None:
        return common_pb.InvitationStatus.from_string("UNSPECIFIED")
    return STATUS_TO_PB[status]


def statuses_from_pb(values: Sequence[int]) -> list[InvitationStatus]:
    out = []
    for i, value in enumerate(values):
        status = STATUS_FROM_PB.get(int(value))
        if status is None:
            raise ValidationError(f"statuses[{i}]", "must be a known invitation status")
        out.append(status)
    return out


async def list_page(
    invitations: Invitations,
    session: AsyncSession,
    caller: Principal,
    *,
    as_inviter: bool,
    statuses: Sequence[InvitationStatus],
    requested_size: int,
    page_token: str,
) -> tuple[list[Invitation], str]:
    """One page of the caller's invitations and the next page's token ("" at the end)."""
    size = page_size(requested_size)
    found = await invitations.listing(
        session,
        caller.user_id,
        as_inviter=as_inviter,
        statuses=statuses,
        cursor=decode_cursor(page_token),
        limit=size + 1,
    )
    if len(found) > size:
        return found[:size], encode_cursor(found[size - 1])
    return found, ""


def watch_predicate(topic: str, caller: Principal) -> Callable[[Event], bool]:
    """A watcher sees the changes of the invitations it received or sent."""

    def visible(event: Event) -> bool:
        data = event.payload.get("invitation") or {}
        return event.topic == topic and caller.user_id in (
            data.get("invitee_id"),
            data.get("inviter_id"),
        )

    return visible


class InvitationOwner(Protocol):
    """What a service that owns invitations offers its servicer."""

    invitations: Invitations

    async def list_invitations(
        self,
        caller: Principal,
        *,
        as_inviter: bool,
        statuses: Sequence[InvitationStatus],
        requested_size: int,
        page_token: str,
    ) -> tuple[list[Invitation], str]: ...

    async def respond_to_invitation(
        self, caller: Principal, invitation_id: str, accept: bool
    ) -> Invitation: ...


class InvitationRpcs:
    """Mixin of the three invitation RPCs. The servicer sets `invitation_owner` (its
    service), `invitation_pb` (its generated module) and `fanout`."""

    invitation_owner: InvitationOwner
    invitation_pb: ModuleType
    fanout: EventFanout | None

    async def list_invitations(self, request: Any) -> Any:
        caller = current_principal()
        found, token = await self.invitation_owner.list_invitations(
            caller,
            as_inviter=request.as_inviter,
            statuses=statuses_from_pb(request.statuses),
            requested_size=request.page_size,
            page_token=request.page_token,
        )
        return self.invitation_pb.ListInvitationsResponse(
            invitations=[invitation_to_pb(i) for i in found], next_page_token=token
        )

    async def respond_to_invitation(self, request: Any) -> Any:
        caller = current_principal()
        invitation = await self.invitation_owner.respond_to_invitation(
            caller, request.invitation_id, request.accept
        )
        return self.invitation_pb.RespondToInvitationResponse(
            invitation=invitation_to_pb(invitation)
        )

    async def watch_invitations(self, request: Any) -> AsyncIterator[Any]:
        caller = current_principal()
        if self.fanout is None:
            raise Unavailable("watching invitations is not available in this process")
        topic = self.invitation_owner.invitations.topic
        async with self.fanout.listen([topic], watch_predicate(topic, caller)) as events:
            async for event in events:
                invitation = Invitation.from_json(event.payload["invitation"])
                yield self.invitation_pb.WatchInvitationsResponse(
                    invitation=invitation_to_pb(invitation)
                )
