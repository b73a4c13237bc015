"""Invitations over GraphQL (issue 9: nobody becomes another person's student without
consent). Learning owns the invitations to tutorial sessions, the marketplace those to
reservations and tutor sessions; an invitation id names its service
(`inv-<service>-...`), so an answer goes to the right one. The invitee's subscription
`invitationChanged` merges both services' streams."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

import strawberry

from gateway.context import Info
from gateway.errors import ClientError, rpc, rpc_stream
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as learning_pb
from services.api.keiko.marketplace import v1 as marketplace_pb
from services.kit.invitations import owning_service

MAX_FIRST = 200


@strawberry.enum(description="What an invitation asks someone to join.")
class InvitationKind(enum.Enum):
    TUTORIAL_SESSION = "TUTORIAL_SESSION"
    RESERVATION = "RESERVATION"
    TUTOR_SESSION = "TUTOR_SESSION"


@strawberry.enum(description="PENDING until the invitee answers; DECLINED and CANCELLED are final.")
class InvitationStatus(enum.Enum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"


def status_from_pb(value: int) -> InvitationStatus | None:
    """None for UNSPECIFIED (nobody was invited)."""
    name = common_pb.InvitationStatus(value).name
    return InvitationStatus[name] if name and name != "UNSPECIFIED" else None


@strawberry.type(
    description=(
        "Someone named the invitee as a participant (the student) of a session or "
        "reservation. Until the invitee accepts, the organizer sees nothing of them and "
        "records nothing about them; declining ends every access."
    )
)
class Invitation:
    id: strawberry.ID
    kind: InvitationKind
    subject_id: strawberry.ID = strawberry.field(
        description="The tutorial session, reservation or tutor session id."
    )
    inviter_id: strawberry.ID
    invitee_id: strawberry.ID
    role: str
    status: InvitationStatus
    created_at: datetime
    responded_at: datetime | None

    @staticmethod
    def from_pb(i: common_pb.Invitation) -> Invitation:
        status = status_from_pb(i.status)
        assert status is not None
        return Invitation(
            id=strawberry.ID(i.id),
            kind=InvitationKind[str(common_pb.InvitationKind(i.kind).name)],
            subject_id=strawberry.ID(i.subject_id),
            inviter_id=strawberry.ID(i.inviter_id),
            invitee_id=strawberry.ID(i.invitee_id),
            role=i.role,
            status=status,
            created_at=i.created_at,
            responded_at=None if i.responded_at.timestamp() == 0 else i.responded_at,
        )


# Which kinds each service (in `_stubs` order) owns.
OWNED_KINDS = (
    {InvitationKind.TUTORIAL_SESSION},
    {InvitationKind.RESERVATION, InvitationKind.TUTOR_SESSION},
)


def _stubs(info: Info) -> list[Any]:
    return [
        info.context.client(learning_pb.LearningServiceStub),
        info.context.client(marketplace_pb.MarketplaceServiceStub),
    ]


def _stub_for(info: Info, invitation_id: str) -> tuple[Any, Any]:
    """The stub and generated module of the service owning the invitation."""
    service = owning_service(invitation_id)
    if service == "learning":
        return info.context.client(learning_pb.LearningServiceStub), learning_pb
    if service == "marketplace":
        return info.context.client(marketplace_pb.MarketplaceServiceStub), marketplace_pb
    raise ClientError("not an invitation id", "BAD_USER_INPUT", field="id")


@strawberry.type
class InvitationQuery:
    @strawberry.field(
        description=(
            "Your invitations, newest first (at most `first`): those you received, or with "
            "asInviter those you sent; of the given kinds only (default: all)."
        )
    )
    async def invitations(
        self,
        info: Info,
        statuses: list[InvitationStatus] | None = None,
        kinds: list[InvitationKind] | None = None,
        as_inviter: bool = False,
        first: int = 50,
    ) -> list[Invitation]:
        info.context.require_token()
        if not 1 <= first <= MAX_FIRST:
            raise ClientError(f"first must be 1 to {MAX_FIRST}", "BAD_USER_INPUT", field="first")
        wanted = [common_pb.InvitationStatus.from_string(s.value) for s in statuses or []]
        wanted_kinds = set(kinds or InvitationKind)
        found: list[common_pb.Invitation] = []
        for stub, module, owned in zip(
            _stubs(info), (learning_pb, marketplace_pb), OWNED_KINDS, strict=True
        ):
            if not owned & wanted_kinds:
                continue
            reply = await rpc(
                stub.list_invitations(
                    module.ListInvitationsRequest(
                        statuses=wanted, as_inviter=as_inviter, page_size=first
                    )
                )
            )
            found += [
                i
                for i in reply.invitations
                if InvitationKind[str(common_pb.InvitationKind(i.kind).name)] in wanted_kinds
            ]
        found.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return [Invitation.from_pb(i) for i in found[:first]]


async def _respond(info: Info, invitation_id: str, accept: bool) -> Invitation:
    info.context.require_token()
    stub, module = _stub_for(info, invitation_id)
    reply = await rpc(
        stub.respond_to_invitation(
            module.RespondToInvitationRequest(invitation_id=invitation_id, accept=accept)
        )
    )
    return Invitation.from_pb(reply.invitation)


@strawberry.type
class InvitationMutation:
    @strawberry.mutation(
        description="Accept an invitation you received. Accepting twice is a no-op."
    )
    async def accept_invitation(self, info: Info, id: strawberry.ID) -> Invitation:
        return await _respond(info, str(id), True)

    @strawberry.mutation(
        description=(
            "Decline an invitation you received, also after accepting it (consent "
            "withdrawn): the organizer loses every access; a declined reservation is "
            "cancelled."
        )
    )
    async def decline_invitation(self, info: Info, id: strawberry.ID) -> Invitation:
        return await _respond(info, str(id), False)


async def _merged(streams: list[AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """Messages of several streams as they come; the first failure ends them all."""
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()

    async def pump(stream: AsyncIterator[Any]) -> None:
        try:
            async for message in stream:
                await queue.put((message, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            await queue.put((None, error))

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        while True:
            message, error = await queue.get()
            if error is not None:
                raise error
            yield message
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@strawberry.type
class InvitationSubscription:
    @strawberry.subscription(
        description="Every change of an invitation you received or sent, from every service."
    )
    async def invitation_changed(self, info: Info) -> AsyncGenerator[Invitation, None]:
        info.context.require_token()
        learning, marketplace = _stubs(info)
        streams = [
            rpc_stream(learning.watch_invitations(learning_pb.WatchInvitationsRequest())),
            rpc_stream(marketplace.watch_invitations(marketplace_pb.WatchInvitationsRequest())),
        ]
        async for reply in _merged(streams):
            yield Invitation.from_pb(reply.invitation)
