"""What every marketplace use case shares: the context it runs in (database, clock, the
callback run after a commit that enqueued events, the invitations), its transactions, and
loading the objects a use case authorizes against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.errors import NotFound, PermissionDenied
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.invitations import Invitations
from services.marketplace.common.domain import require_id
from services.marketplace.invitations.consent import (
    marketplace_invitations,
    with_reservation_consent,
    with_session_consent,
)
from services.marketplace.reservations.domain import Reservation
from services.marketplace.spaces.domain import Space
from services.marketplace.storage import MarketplaceRepository, outbox
from services.marketplace.tutor_sessions.domain import TutorSession


class Tx:
    """One write transaction: the repository and the events to enqueue in it."""

    def __init__(self, repo: MarketplaceRepository) -> None:
        self.repo = repo
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        """Enqueue `event` in the outbox, in this transaction."""
        await enqueue(self.repo.session, outbox, event)
        self.events.append(event)


@dataclass
class MarketplaceContext:
    """The database and clock the use cases run on, and `on_commit`: run after a
    transaction that enqueued events committed (the outbox relay's `notify`, so events go
    out now instead of at the next poll)."""

    db: Database
    clock: Clock
    on_commit: Callable[[], None] | None = None
    invitations: Invitations = field(default_factory=marketplace_invitations)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self.db.transaction() as session:
            tx = Tx(MarketplaceRepository(session, self.db.dialect))
            yield tx
        if tx.events and self.on_commit is not None:
            self.on_commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MarketplaceRepository]:
        async with self.db.session() as session:
            yield MarketplaceRepository(session, self.db.dialect)

    # -- loading --------------------------------------------------------------------------

    async def space(
        self, repo: MarketplaceRepository, space_id: str, field: str, *, lock: bool = False
    ) -> Space:
        """`lock`: on PostgreSQL, hold the space row until commit (SELECT ... FOR UPDATE), so
        concurrent edits of one space apply one after the other instead of overwriting each
        other from stale reads (SQLite's write lock already serializes writers)."""
        require_id(space_id, field)
        space = await repo.get_space(space_id, for_update=lock)
        if space is None:
            raise NotFound(f"space {space_id} not found")
        return space

    async def reservation(
        self, repo: MarketplaceRepository, reservation_id: str, field: str = "reservation_id"
    ) -> Reservation:
        require_id(reservation_id, field)
        found = await repo.get_reservation(reservation_id, for_update=True)
        if found is None:
            raise NotFound(f"reservation {reservation_id} not found")
        return found

    async def tutor_session(self, repo: MarketplaceRepository, session_id: str) -> TutorSession:
        require_id(session_id, "session_id")
        session = await repo.get_session(session_id)
        if session is None:
            raise NotFound(f"tutor session {session_id} not found")
        return session

    # -- consent --------------------------------------------------------------------------

    async def with_consent(
        self, repo: MarketplaceRepository, r: Reservation, session: TutorSession | None
    ) -> tuple[Reservation, TutorSession | None]:
        """The reservation and its session with the student's answer to their invitation."""
        [r] = await with_reservation_consent(self.invitations, repo.session, [r])
        if session is not None:
            [session] = await with_session_consent(self.invitations, repo.session, [session])
        return r, session


def require_owner(principal: Principal, space: Space, action: str) -> None:
    if principal.user_id != space.owner_id and not principal.is_admin:
        raise PermissionDenied(f"only the space owner may {action}")


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise PermissionDenied(f"only an admin may {action}")
