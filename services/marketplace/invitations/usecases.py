"""Invitation use cases: the invitee lists and answers their invitations. Declining (also
after accepting) cancels the reservation and its tutor session, as a cancellation by the
invitee. The three invitation RPCs are the shared `InvitationRpcs` mixin."""

from __future__ import annotations

from collections.abc import Sequence

from services.kit.auth import Principal
from services.kit.invitations import Invitation, InvitationKind, Invitations, InvitationStatus
from services.kit.invitations.rpc import list_page
from services.marketplace.common.usecases import MarketplaceContext
from services.marketplace.reservations.domain import ACTIVE_STATUSES, Reservation
from services.marketplace.reservations.usecases import Reservations
from services.marketplace.storage import MarketplaceRepository


class MarketplaceInvitations:
    """What `InvitationRpcs` needs of its owner (`InvitationOwner`)."""

    def __init__(self, ctx: MarketplaceContext, reservations: Reservations) -> None:
        self.ctx = ctx
        self.reservations = reservations
        self.invitations: Invitations = ctx.invitations

    async def list_invitations(
        self,
        caller: Principal,
        *,
        as_inviter: bool,
        statuses: Sequence[InvitationStatus],
        requested_size: int,
        page_token: str,
    ) -> tuple[list[Invitation], str]:
        async with self.ctx.read() as repo:
            return await list_page(
                self.ctx.invitations,
                repo.session,
                caller,
                as_inviter=as_inviter,
                statuses=statuses,
                requested_size=requested_size,
                page_token=page_token,
            )

    async def respond_to_invitation(
        self, caller: Principal, invitation_id: str, accept: bool
    ) -> Invitation:
        """The invitee's answer. Declining (also after accepting) cancels the reservation
        and its tutor session, as a cancellation by the invitee."""
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            invitation, changed = await self.ctx.invitations.respond(
                tx.repo.session, invitation_id, caller.user_id, accept, now
            )
            if not changed:
                return invitation
            await tx.emit(self.ctx.invitations.event(invitation, now))
            if invitation.status is InvitationStatus.DECLINED:
                r = await self._invited_reservation(tx.repo, invitation)
                if r.status in ACTIVE_STATUSES:
                    await self.reservations.cancel_in(
                        tx, caller, r, f"the {invitation.role} declined the invitation"
                    )
            return invitation

    async def _invited_reservation(
        self, repo: MarketplaceRepository, invitation: Invitation
    ) -> Reservation:
        reservation_id = invitation.subject_id
        if invitation.kind is InvitationKind.TUTOR_SESSION:
            reservation_id = (
                await self.ctx.tutor_session(repo, invitation.subject_id)
            ).reservation_id
        return await self.ctx.reservation(repo, reservation_id)
