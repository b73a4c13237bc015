"""Recently verified LRS client credentials, so an xAPI client sending the same Basic
credentials on every request costs one lookup a second instead of one a request.

A `FreshFor` map (services.kit.fresh) keyed by the SHA-256 of `key:secret` (the secret
itself is never kept), per process, only successful verifications. Staleness bound: an
entry is served for at most `TTL_SECONDS` (1 s) after the lookup that verified it. A
revocation through this process clears the map at once (`clear`, which also keeps a
verification still in flight from storing what it read before); one made through another
process (another worker or replica) takes effect here within that second. Nothing else
the entry depends on can change: an LRS client's principal is its owner id and client id,
without the owner's roles.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from services.kit.auth import Principal
from services.kit.fresh import FreshFor

TTL_SECONDS = 1.0
MAX_ENTRIES = 1024

VerifiedCredentials = FreshFor[bytes, Principal]


def verified_credentials(
    max_entries: int = MAX_ENTRIES, monotonic: Callable[[], float] = time.monotonic
) -> VerifiedCredentials:
    return FreshFor(fresh_for=TTL_SECONDS, max_entries=max_entries, monotonic=monotonic)


def credential_digest(key: str, secret: str) -> bytes:
    return hashlib.sha256(f"{key}:{secret}".encode()).digest()
