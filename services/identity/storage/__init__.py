"""Identity persistence: tables in the `identity` schema and the repository over them, one
module a capability: `users` (and roles), `credentials` (passkeys), `ceremonies`,
`sessions` (and refresh tokens), `limits` (failed logins, rate limits), `housekeeping`; the
schema's metadata and the store base in `common`.

Secrets are stored hashed only: refresh tokens and ceremony challenges as SHA-256 hex,
rate-limit keys (caller address, email) as SHA-256 too, so the table holds no personal data.
"""

from __future__ import annotations

from services.identity.storage.ceremonies import CeremonyStore, ceremonies
from services.identity.storage.common import SCHEMA, metadata, new_id
from services.identity.storage.credentials import CredentialStore, credentials
from services.identity.storage.housekeeping import HousekeepingStore
from services.identity.storage.limits import LimitStore, auth_failures, rate_buckets
from services.identity.storage.sessions import (
    RefreshTokenRecord,
    SessionStore,
    refresh_tokens,
    sessions,
)
from services.identity.storage.users import UserStore, user_roles, users


class IdentityRepository(
    UserStore, CredentialStore, CeremonyStore, SessionStore, LimitStore, HousekeepingStore
):
    """Queries and writes of the identity schema, within the caller's session/transaction
    (see `Store`)."""


__all__ = [
    "SCHEMA",
    "IdentityRepository",
    "RefreshTokenRecord",
    "auth_failures",
    "ceremonies",
    "credentials",
    "metadata",
    "new_id",
    "rate_buckets",
    "refresh_tokens",
    "sessions",
    "user_roles",
    "users",
]

# The proof-of-humanity tables (and the identity outbox) join this metadata: one alembic
# history for the schema. Imported last: that module imports `metadata` from here.
from services.identity import humanity_storage as _humanity_storage  # noqa: E402, F401
