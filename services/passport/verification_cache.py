"""Verified entries, remembered: an entry whose signature, proof and on-chain root all
checked out stays verified (its statement, signature and anchor are immutable, and the
root is final on chain), so it is never verified twice by the same process.

Only VERIFIED results are kept: a pending entry becomes anchored later, and a failure may
come from a chain that was briefly unreachable. So are only results whose signing key was
found bound on chain (or that state no author): a key not registered yet is registered by
the translator later. The key holds everything the result depends on (statement hash,
signature, key, the stated author, batch, root, transaction), so a record that differs in
any of them is a different key. Bounded: least recently used out first. (A key revoked
after the entry was anchored keeps the entry valid; a remembered result goes on saying
"registered" until it is evicted or the process restarts.)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chain.verify.export import ExportEntry
    from services.passport.verification import Verification

VerificationKey = tuple[str, bytes, bytes, bytes, str, str, bool, str, int, int, int, int]
REGISTERED = "registered on chain"  # chain.verify.authorship.Registration.REGISTERED
DEFAULT_CAPACITY = 100_000


def verification_key(entry: ExportEntry) -> VerificationKey | None:
    """The cache key of an exported entry; None while it is not anchored with a proof."""
    anchor = entry.anchor
    if anchor is None:
        return None
    author = entry.author
    return (
        entry.entry_id,
        entry.statement_sha256,
        entry.signature,
        entry.public_key,
        "" if author is None else author.kind.value,
        "" if author is None else author.id,
        entry.legacy,
        entry.leaf_encoding,
        anchor.batch_id,
        anchor.leaf_index,
        anchor.root,
        anchor.tx_hash,
    )


class VerifiedEntries:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[VerificationKey, Verification] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: VerificationKey | None) -> Verification | None:
        if key is None:
            return None
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def remember(self, key: VerificationKey | None, verification: Verification) -> None:
        if key is None or not verification.verified:
            return
        if verification.key_registration not in ("", REGISTERED):
            return  # not bound on chain yet: the next check may find it bound
        self._entries[key] = verification
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
