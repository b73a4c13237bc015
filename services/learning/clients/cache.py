"""Recently verified LRS client credentials, so an xAPI client sending the same Basic
credentials on every request costs one lookup a second instead of one a request.

Keyed by the SHA-256 of `key:secret` (the secret itself is never kept), per process, only
successful verifications. Staleness bound: an entry is served for at most `ttl_seconds`
(1 s) after the lookup that verified it. A revocation through this process clears the
cache at once (`forget_all`, which also keeps a verification still in flight from
caching what it read before); one made through another process (another worker or
replica) takes effect here within that second. Nothing else the entry depends on can
change: an LRS client's principal is its owner id and client id, without the owner's roles.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.kit.auth import Principal

TTL_SECONDS = 1.0
MAX_ENTRIES = 1024


def credential_digest(key: str, secret: str) -> bytes:
    return hashlib.sha256(f"{key}:{secret}".encode()).digest()


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires: float


class VerifiedCredentials:
    def __init__(
        self,
        ttl_seconds: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.monotonic = monotonic
        self._entries: dict[bytes, _Entry] = {}
        # Bumped by forget_all: a verification that read the client before a revocation
        # and finishes after it must not cache what it read (`put(..., generation)`).
        self.generation = 0

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self.monotonic() >= entry.expires:
            del self._entries[digest]
            return None
        return entry.principal

    def put(self, digest: bytes, principal: Principal, generation: int) -> None:
        """Remember a verification that began at ``generation`` (unless a revocation
        came since)."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            # The oldest entry (insertion order) makes room: a lookup is all it costs.
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = _Entry(principal, self.monotonic() + self.ttl)

    def forget_all(self) -> None:
        self.generation += 1
        self._entries.clear()
