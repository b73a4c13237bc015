"""The invitations table of one service (in that service's schema, like the outbox) and
the operations on it, all inside the caller's transaction so that an invitation changes
together with the object it invites to and with the event announcing it (outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.clock import as_utc_or_none
from services.kit.errors import NotFound
from services.kit.events import Event
from services.kit.invitations.domain import (
    OPEN_STATUSES,
    Invitation,
    InvitationKind,
    InvitationStatus,
    answer,
    check_invitation_id,
    new_invitation_id,
)


def invitation_table(metadata: MetaData, name: str = "invitations") -> Table:
    """One row per (kind, subject, invitee): inviting again is idempotent."""
    table = Table(
        name,
        metadata,
        Column("id", String(96), primary_key=True),
        Column("kind", String(32), nullable=False),
        Column("subject_id", String(64), nullable=False),
        Column("inviter_id", String(64), nullable=False),
        Column("invitee_id", String(64), nullable=False),
        Column("role", String(32), nullable=False),
        Column("status", String(16), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("responded_at", DateTime(timezone=True), nullable=True),
        UniqueConstraint("kind", "subject_id", "invitee_id", name=f"uq_{name}_subject_invitee"),
    )
    Index(f"ix_{name}_invitee", table.c.invitee_id, table.c.created_at)
    Index(f"ix_{name}_inviter", table.c.inviter_id, table.c.created_at)
    return table


def _row(row: Row) -> Invitation:
    created = as_utc_or_none(row.created_at)
    assert created is not None
    return Invitation(
        id=row.id,
        kind=InvitationKind(row.kind),
        subject_id=row.subject_id,
        inviter_id=row.inviter_id,
        invitee_id=row.invitee_id,
        role=row.role,
        status=InvitationStatus(row.status),
        created_at=created,
        responded_at=as_utc_or_none(row.responded_at),
    )


class Invitations:
    """A service's invitations: `Invitations(table, service="marketplace")`. Every method
    takes the caller's session; events are returned for the caller to enqueue."""

    def __init__(self, table: Table, *, service: str) -> None:
        self.table = table
        self.service = service
        self.topic = f"{service}.invitation_changed"

    def event(self, invitation: Invitation, now: datetime) -> Event:
        """`<service>.invitation_changed`: what the invitee's and inviter's streams get."""
        return Event(
            self.topic,
            key=invitation.subject_id,
            occurred_at=now,
            payload={"invitation": invitation.to_json()},
        )

    async def find(
        self, session: AsyncSession, kind: InvitationKind, subject_id: str, invitee_id: str
    ) -> Invitation | None:
        t = self.table
        row = (
            await session.execute(
                select(t).where(
                    t.c.kind == str(kind),
                    t.c.subject_id == subject_id,
                    t.c.invitee_id == invitee_id,
                )
            )
        ).first()
        return _row(row) if row is not None else None

    async def invite(
        self,
        session: AsyncSession,
        *,
        kind: InvitationKind,
        subject_id: str,
        inviter_id: str,
        invitee_id: str,
        role: str,
        now: datetime,
    ) -> tuple[Invitation, bool]:
        """The invitation of `invitee_id` to the subject, and whether it is new (a retry
        finds the one it made). Inviting oneself is not an invitation: callers skip it."""
        existing = await self.find(session, kind, subject_id, invitee_id)
        if existing is not None:
            return existing, False
        invitation = Invitation(
            id=new_invitation_id(self.service),
            kind=kind,
            subject_id=subject_id,
            inviter_id=inviter_id,
            invitee_id=invitee_id,
            role=role,
            status=InvitationStatus.PENDING,
            created_at=now,
        )
        # Invitations are made in the transaction that makes (or locks) their subject, so
        # two writers never race here; the unique key still guards against it.
        await session.execute(
            insert(self.table).values(
                id=invitation.id,
                kind=str(kind),
                subject_id=subject_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                role=role,
                status=str(invitation.status),
                created_at=now.astimezone(UTC),
            )
        )
        return invitation, True

    async def get(
        self, session: AsyncSession, invitation_id: str, *, for_update: bool = False
    ) -> Invitation:
        check_invitation_id(invitation_id)
        query = select(self.table).where(self.table.c.id == invitation_id)
        if for_update:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"invitation {invitation_id} not found")
        return _row(row)

    async def _save(self, session: AsyncSession, invitation: Invitation) -> None:
        await session.execute(
            update(self.table)
            .where(self.table.c.id == invitation.id)
            .values(
                status=str(invitation.status),
                responded_at=as_utc_or_none(invitation.responded_at),
            )
        )

    async def respond(
        self,
        session: AsyncSession,
        invitation_id: str,
        caller_id: str,
        accept: bool,
        now: datetime,
    ) -> tuple[Invitation, bool]:
        """Record the invitee's answer; returns the invitation and whether it changed."""
        current = await self.get(session, invitation_id, for_update=True)
        answered = answer(current, caller_id, accept, now)
        if answered is current:
            return current, False
        await self._save(session, answered)
        return answered, True

    async def of_subject(
        self, session: AsyncSession, kind: InvitationKind, subject_id: str
    ) -> list[Invitation]:
        t = self.table
        rows = await session.execute(
            select(t).where(t.c.kind == str(kind), t.c.subject_id == subject_id).order_by(t.c.id)
        )
        return [_row(r) for r in rows]

    async def cancel_subject(
        self, session: AsyncSession, kind: InvitationKind, subject_id: str, now: datetime
    ) -> list[Invitation]:
        """The organizer cancelled the subject: every open invitation to it is cancelled
        (returned, for their events)."""
        cancelled = []
        for invitation in await self.of_subject(session, kind, subject_id):
            if invitation.status in OPEN_STATUSES:
                changed = replace(
                    invitation,
                    status=InvitationStatus.CANCELLED,
                    responded_at=invitation.responded_at or now,
                )
                await self._save(session, changed)
                cancelled.append(changed)
        return cancelled

    async def accepted_subjects(
        self, session: AsyncSession, invitee_id: str, kind: InvitationKind
    ) -> set[str]:
        """The subjects of `kind` the invitee accepted (and has not withdrawn from)."""
        t = self.table
        rows = await session.execute(
            select(t.c.subject_id).where(
                t.c.invitee_id == invitee_id,
                t.c.kind == str(kind),
                t.c.status == str(InvitationStatus.ACCEPTED),
            )
        )
        return {r.subject_id for r in rows}

    async def listing(
        self,
        session: AsyncSession,
        user_id: str,
        *,
        as_inviter: bool,
        statuses: Sequence[InvitationStatus],
        cursor: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Invitation]:
        """The user's invitations (received, or sent with `as_inviter`), newest first."""
        t = self.table
        who = t.c.inviter_id if as_inviter else t.c.invitee_id
        query = select(t).where(who == user_id)
        if statuses:
            query = query.where(t.c.status.in_([str(s) for s in statuses]))
        if cursor is not None:
            when, last_id = cursor
            when = when.astimezone(UTC)
            query = query.where(
                or_(t.c.created_at < when, and_(t.c.created_at == when, t.c.id < last_id))
            )
        rows = await session.execute(
            query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        )
        return [_row(r) for r in rows]
