"""The `marketplace` schema: every capability's tables on one MetaData (what migrations and
the schema drift test compare against), and the repository the use cases run queries
through, composed of each capability's store. Each table is defined in its capability's
`storage.py`; the outbox and invitations tables in `common/storage.py`."""

from __future__ import annotations

from services.marketplace.common.storage import SCHEMA, invitations_table, metadata, new_id, outbox
from services.marketplace.ratings.storage import RatingStore, space_ratings
from services.marketplace.reservations.storage import ReservationStore, reservations
from services.marketplace.spaces.storage import SpaceStore, spaces
from services.marketplace.tutor_sessions.storage import TutorSessionStore, tutor_sessions
from services.marketplace.verification.storage import CertificationStore, certifications


class MarketplaceRepository(
    SpaceStore, CertificationStore, ReservationStore, TutorSessionStore, RatingStore
):
    """Queries over one session (one transaction for writes)."""


__all__ = [
    "SCHEMA",
    "MarketplaceRepository",
    "certifications",
    "invitations_table",
    "metadata",
    "new_id",
    "outbox",
    "reservations",
    "space_ratings",
    "spaces",
    "tutor_sessions",
]
