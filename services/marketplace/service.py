"""The marketplace service: its capabilities composed on one database, clock and outbox.

Each capability is a package read the same way (domain, storage, use cases, servicer):

* `spaces`: learning spaces, their availability (`spaces/availability.py`) and search;
* `verification`: safety certifications, their attestation and space verification;
* `reservations`: booking a space with no double booking, confirming, cancelling (the
  refund policy), completing, watching;
* `tutor_sessions`: a tutor and a student in a space, booked with its reservation;
* `ratings`: rating a space after a completed reservation;
* `invitations`: consent (issue 9), the invitations a booking sends and their answers;
* `common`: limits, page tokens, the schema's MetaData, the transaction context.

Every write authorizes the caller against the object it touches, validates its input
(raising `ValidationError` with the field path), runs in one transaction with the events
it announces (outbox), and is safe to retry (request_id, or a no-op when the object is
already in the requested state). Who may do what is in each capability's `usecases.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from services.kit.clock import Clock
from services.kit.db import Database
from services.marketplace.common.usecases import MarketplaceContext
from services.marketplace.invitations.usecases import MarketplaceInvitations
from services.marketplace.ratings.usecases import Ratings
from services.marketplace.reservations.usecases import Reservations
from services.marketplace.spaces.usecases import Spaces
from services.marketplace.tutor_sessions.usecases import TutorSessions
from services.marketplace.verification.usecases import Verification


class MarketplaceService:
    def __init__(
        self, db: Database, clock: Clock, *, on_commit: Callable[[], None] | None = None
    ) -> None:
        """`on_commit` runs after a transaction that enqueued events committed (the outbox
        relay's `notify`, so events go out now instead of at the next poll)."""
        self.ctx = MarketplaceContext(db, clock, on_commit)
        self.spaces = Spaces(self.ctx)
        self.verification = Verification(self.ctx)
        self.reservations = Reservations(self.ctx)
        self.tutor_sessions = TutorSessions(self.ctx, self.reservations)
        self.ratings = Ratings(self.ctx)
        self.invitations = MarketplaceInvitations(self.ctx, self.reservations)

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def clock(self) -> Clock:
        return self.ctx.clock


__all__ = ["MarketplaceService"]
