"""Verified entries, remembered: an entry whose signature, proof and on-chain root all
checked out stays verified (its statement, signature and anchor are immutable, and the
root is final on chain), so it is never verified twice by the same process.

Only VERIFIED results are kept: a pending entry becomes anchored later, and a failure may
come from a chain that was briefly unreachable. The key holds everything the result
depends on (statement hash, signature, key, batch, root, transaction), so a record that
differs in any of them is a different key. Bounded: least recently used out first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chain.verify.export import ExportEntry
    from services.passport.service import Verification

VerificationKey = tuple[str, bytes, bytes, bytes, int, int, int, int]
DEFAULT_CAPACITY = 100_000


def verification_key(entry: ExportEntry) -> VerificationKey | None:
    """The cache key of an exported entry; None while it is not anchored with a proof."""
    anchor = entry.anchor
    if anchor is None:
        return None
    return (
        entry.entry_id,
        entry.statement_sha256,
        entry.signature,
        entry.public_key,
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
        self._entries[key] = verification
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
