"""A bounded in-memory map for reads that may be served a moment late: an entry is
served for at most `fresh_for` seconds after it was read from the database (the bound on
how late a write made by another process is seen), writers in this process invalidate
what they wrote at once, and a read that raced such a write cannot store what it read
(`generation`). Used by identity's read caches (IdentityService.active_sessions, .users) and by
learning's verified LRS credentials (services.learning.clients.cache).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
S = TypeVar("S")
R = TypeVar("R")

# How long an entry read from the database is served, unless a cache says otherwise.
FRESH_FOR_S = 1.0
MAX_ENTRIES = 10_000


class FreshFor(Generic[K, V]):
    """A bounded map whose entries are served for at most `fresh_for` seconds of
    `monotonic` after they were stored, and that writers invalidate."""

    def __init__(
        self,
        fresh_for: float = FRESH_FOR_S,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fresh_for = fresh_for
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[K, tuple[V, float]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Read it before reading the database; pass it to `put`."""
        return self._generation

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        value, stored_at = found
        if self._monotonic() - stored_at >= self._fresh_for:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep `value`, read from the database after `generation` was taken, unless an
        invalidation happened since (the value may predate that write)."""
        if generation != self._generation:
            return
        entries = self._entries
        entries.pop(key, None)  # re-stored at the end: the dict stays in storage order
        if len(entries) >= self._max_entries:
            del entries[next(iter(entries))]  # the oldest stored
        entries[key] = (value, self._monotonic())

    def invalidate(self, keys: Iterable[K]) -> None:
        """Forget `keys` (their rows were just written) and refuse the stores of every
        read that began before now."""
        self._generation += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()


class RenderedFrom(Generic[K, S, R]):
    """`render()` of a value the read caches handed out, kept while they hand out the
    same object: an entry is used only if its source `is` the one given, so it is exactly
    as fresh as the cache entry it was made from (a new read gives a new object)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, tuple[S, R]] = {}

    def get(self, key: K, source: S, render: Callable[[], R]) -> R:
        found = self._entries.get(key)
        if found is not None and found[0] is source:
            return found[1]
        rendered = render()
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self._max_entries:
            del entries[next(iter(entries))]  # the oldest rendered
        entries[key] = (source, rendered)
        return rendered
