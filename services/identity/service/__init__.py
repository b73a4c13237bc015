"""The identity application service: the use cases behind every identity RPC, one module
a capability: `registration`, `login`, `sessions` (tokens, the active-session check,
logout), `users` (profiles, roles, the admin bootstrap), `credentials` (passkeys), on the
plumbing of `core` (transactions, read caches, rate limits, ceremonies).

It orchestrates the pure domain (`domain`, `relying_party`), the repository (`storage`)
and the token issuer. The gRPC servicer only decodes requests, calls these methods with
the caller's Principal, and encodes the results.
"""

from __future__ import annotations

from services.identity.service.core import ClientInfo, SignedIn, Started
from services.identity.service.credentials import Credentials
from services.identity.service.login import Login
from services.identity.service.registration import Registration
from services.identity.service.users import (
    TOPIC_PROFILE_CHANGED,
    Users,
    grant_admin,
    list_admins,
    profile_changed_event,
)


class IdentityService(Registration, Login, Users, Credentials):
    """Every identity use case (the sessions' come with registration, login and users)."""


__all__ = [
    "TOPIC_PROFILE_CHANGED",
    "ClientInfo",
    "IdentityService",
    "SignedIn",
    "Started",
    "grant_admin",
    "list_admins",
    "profile_changed_event",
]
